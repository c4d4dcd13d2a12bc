//! [`FixWriter`]: builds one FIX message in a fixed buffer, without allocating.
//!
//! The body is written from a fixed offset, [`BODY_START`], which leaves room for the longest
//! `8=FIX.4.4|9=<n>|` prefix. [`FixWriter::finish`] then writes that prefix right-aligned in
//! front of the body (its length is only known at the end) and the `10=<sum>|` trailer after
//! it, so the message is contiguous without moving the body.
//!
//! Numbers are written by hand (measured hot-path reason: `core::fmt` goes through dynamic
//! dispatch and its padding logic; a timestamp through `write!` takes 91 ns against 15-21 ns by
//! hand, see `fix/timestamp` in benches/benches/fix.rs): the digit count first, then digits from
//! the right two at a time from a 200-byte table, straight into the buffer. Not the `itoa`
//! crate: decimals need the point inserted and zero padding, and the header and timestamps need
//! fixed-width digits, which the same two helpers do.

use crate::decimal::Scale;

use super::digits::put_2_digits;
use super::error::FixEncodeError;
use super::time::{UTC_TIMESTAMP_LEN, UtcTimestamp};
use super::{BEGIN_STRING, FIX_MESSAGE_LEN_MAX, SOH, TAG_PREFIX_LEN_MAX, Tag, checksum, tag};

/// `8=FIX.4.4|`.
const BEGIN_STRING_FIELD: &[u8] = b"8=FIX.4.4\x01";
/// `9=`.
const BODY_LENGTH_PREFIX: &[u8] = b"9=";
/// Digits of the largest body length that fits.
const BODY_LENGTH_DIGITS_MAX: usize = digit_count_const(FIX_MESSAGE_LEN_MAX as u64);
/// Where the body (from `35=`) starts in the buffer: after the longest header prefix.
pub(crate) const BODY_START: usize =
    BEGIN_STRING_FIELD.len() + BODY_LENGTH_PREFIX.len() + BODY_LENGTH_DIGITS_MAX + 1;
/// `10=ddd|`.
const TRAILER_LEN: usize = 7;
/// Where the body must end, to leave room for the trailer.
const BODY_END_MAX: usize = FIX_MESSAGE_LEN_MAX - TRAILER_LEN;
/// Most digits of a `u64`.
const U64_DIGITS_MAX: usize = 20;
/// Most decimals [`FixWriter::field_units`] writes: a `u64` has 20 digits, one of which stays
/// before the point.
const DECIMALS_MAX: u8 = (U64_DIGITS_MAX - 1) as u8;

/// `10^i` for every count of decimals [`FixWriter::field_units`] writes.
const POW10: [u64; DECIMALS_MAX as usize + 1] = {
    let mut table = [1u64; DECIMALS_MAX as usize + 1];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

const _: () = assert!(BEGIN_STRING_FIELD.len() == 2 + BEGIN_STRING.len() + 1);
const _: () = assert!(BODY_START + TRAILER_LEN < FIX_MESSAGE_LEN_MAX);
// `put`'s whole-prefix store stays in the buffer (see there).
const _: () = assert!(TAG_PREFIX_LEN_MAX <= 3 + TRAILER_LEN);

const fn digit_count_const(mut value: u64) -> usize {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

/// Digits of `value` in decimal (1 for 0).
#[inline]
fn digit_count(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Fills all of `out` with the low `out.len()` decimal digits of `value`, zero-padded on the
/// left.
#[inline]
fn fill_digits(out: &mut [u8], mut value: u64) {
    let mut end = out.len();
    while end >= 2 {
        let pair = (value % 100) as u32;
        value /= 100;
        put_2_digits(&mut out[end - 2..end], pair);
        end -= 2;
    }
    if end == 1 {
        out[0] = b'0' + (value % 10) as u8;
    }
}

/// One FIX message being built in a fixed buffer of [`FIX_MESSAGE_LEN_MAX`] bytes.
///
/// [`begin`](Self::begin) starts a message with its MsgType; the `field*` methods append
/// `tag=value|` fields in call order (the caller writes the rest of the standard header:
/// SenderCompID, TargetCompID, MsgSeqNum, SendingTime); [`finish`](Self::finish) adds
/// BeginString, BodyLength and CheckSum and returns the message. A field that would not fit is
/// [`FixEncodeError::MessageTooLong`], and the message must be begun again.
#[derive(Clone)]
pub struct FixWriter {
    buf: [u8; FIX_MESSAGE_LEN_MAX],
    /// End of the body written so far.
    pos: usize,
}

impl Default for FixWriter {
    fn default() -> Self {
        FixWriter::new()
    }
}

impl std::fmt::Debug for FixWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixWriter")
            .field("body", &String::from_utf8_lossy(self.body()))
            .finish()
    }
}

impl FixWriter {
    /// An empty writer.
    pub const fn new() -> FixWriter {
        FixWriter {
            buf: [0; FIX_MESSAGE_LEN_MAX],
            pos: BODY_START,
        }
    }

    /// Starts a new message of type `msg_type` (tag 35), dropping what was written before.
    #[inline]
    pub fn begin(&mut self, msg_type: &[u8]) -> Result<(), FixEncodeError> {
        self.pos = BODY_START;
        self.field(tag::MSG_TYPE, msg_type)
    }

    /// The body written so far, from `35=`.
    pub fn body(&self) -> &[u8] {
        &self.buf[BODY_START..self.pos]
    }

    /// Room for `len` more body bytes, or the error naming the field that did not fit.
    #[inline]
    fn reserve(&self, tag: Tag, len: usize) -> Result<usize, FixEncodeError> {
        let at = self.pos;
        if len > BODY_END_MAX - at {
            return Err(FixEncodeError::MessageTooLong { tag: tag.number() });
        }
        Ok(at)
    }

    /// Appends whole, already encoded fields (`tag=value|...`, ending with SOH), such as a
    /// header part computed once on the cold path. The caller vouches for their syntax;
    /// `tag` only names the first of them in a [`FixEncodeError::MessageTooLong`].
    #[inline]
    pub fn encoded_fields(&mut self, tag: Tag, fields: &[u8]) -> Result<(), FixEncodeError> {
        debug_assert!(fields.is_empty() || fields.last() == Some(&SOH));
        let at = self.reserve(tag, fields.len())?;
        self.buf[at..at + fields.len()].copy_from_slice(fields);
        self.pos = at + fields.len();
        Ok(())
    }

    /// Writes `tag=` and then `value_len` bytes through `write`, then SOH.
    #[inline]
    fn put(
        &mut self,
        tag: Tag,
        value_len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(), FixEncodeError> {
        let prefix_len = tag.prefix().len();
        let at = self.reserve(tag, prefix_len + value_len + 1)?;
        let value_at = at + prefix_len;
        let end = value_at + value_len;
        // The whole prefix array in one fixed-size store, not a `memcpy` call of its length:
        // the bytes past `<number>=` land where the value and SOH go next, or in the room
        // `reserve` keeps for the trailer (a field takes at least 3 bytes, the trailer 7, so
        // `at + TAG_PREFIX_LEN_MAX` never passes the buffer's end).
        self.buf[at..at + TAG_PREFIX_LEN_MAX].copy_from_slice(tag.prefix_padded());
        write(&mut self.buf[value_at..end]);
        self.buf[end] = SOH;
        self.pos = end + 1;
        Ok(())
    }

    /// `tag=value|`. The value must be non-empty and hold no SOH.
    #[inline]
    pub fn field(&mut self, tag: Tag, value: &[u8]) -> Result<(), FixEncodeError> {
        if value.is_empty() {
            return Err(FixEncodeError::EmptyValue { tag: tag.number() });
        }
        if let Some(offset) = value.iter().position(|&b| b == SOH) {
            return Err(FixEncodeError::InvalidValue {
                tag: tag.number(),
                offset,
                byte: SOH,
            });
        }
        self.put(tag, value.len(), |out| out.copy_from_slice(value))
    }

    /// `tag=c|` for a FIX char field: `value` must be printable ASCII.
    #[inline]
    pub fn field_char(&mut self, tag: Tag, value: u8) -> Result<(), FixEncodeError> {
        if !value.is_ascii_graphic() {
            return Err(FixEncodeError::InvalidValue {
                tag: tag.number(),
                offset: 0,
                byte: value,
            });
        }
        self.put(tag, 1, |out| out[0] = value)
    }

    /// `tag=<value in decimal>|`.
    #[inline]
    pub fn field_u64(&mut self, tag: Tag, value: u64) -> Result<(), FixEncodeError> {
        self.put(tag, digit_count(value), |out| fill_digits(out, value))
    }

    /// `tag=<timestamp>|`.
    #[inline]
    pub fn field_timestamp(
        &mut self,
        tag: Tag,
        timestamp: &UtcTimestamp,
    ) -> Result<(), FixEncodeError> {
        self.put(tag, UTC_TIMESTAMP_LEN, |out| {
            out.copy_from_slice(timestamp.as_bytes())
        })
    }

    /// `tag=<units x scale>|`: `units` integer units of `scale` as an exact decimal number,
    /// without floating point. Trailing zeros of the fraction are trimmed, and the point too
    /// when the value is whole (`0.3513`, `12`, `-0.5`); a value below 1 has a `0` before its
    /// point. The text parses back to `units` with [`crate::decimal::parse_units`] (the sign
    /// aside, which it does not take).
    #[inline]
    pub fn field_units(
        &mut self,
        tag: Tag,
        units: i64,
        scale: Scale,
    ) -> Result<(), FixEncodeError> {
        if scale.mantissa == 0 || scale.exp > DECIMALS_MAX {
            return Err(FixEncodeError::BadScale {
                tag: tag.number(),
                mantissa: scale.mantissa,
                exp: scale.exp,
            });
        }
        let magnitude = units.unsigned_abs().checked_mul(scale.mantissa).ok_or(
            FixEncodeError::NumberTooLarge {
                tag: tag.number(),
                units,
            },
        )?;
        // Whole part and fraction apart (one division), the fraction's trailing zeros dropped,
        // both written straight into the buffer (no scratch digits, no copies: the first way,
        // every digit into a scratch array then a scan for the zeros, was 310 instructions a
        // field, a fifth of encoding an order).
        let exp = scale.exp as usize;
        let unit = POW10[exp];
        let (int, mut fraction) = (magnitude / unit, magnitude % unit);
        let mut decimals = if fraction == 0 { 0 } else { exp };
        while decimals > 0 && fraction % 10 == 0 {
            fraction /= 10;
            decimals -= 1;
        }
        let int_len = digit_count(int);
        let negative = units < 0;
        let len = usize::from(negative) + int_len + if decimals > 0 { 1 + decimals } else { 0 };
        self.put(tag, len, |out| {
            let (sign, out) = out.split_at_mut(usize::from(negative));
            if negative {
                sign[0] = b'-';
            }
            let (int_out, out) = out.split_at_mut(int_len);
            fill_digits(int_out, int);
            if let Some((point, fraction_out)) = out.split_first_mut() {
                *point = b'.';
                // Zero-padded: 3513 at 8 decimals is 0.00003513.
                fill_digits(fraction_out, fraction);
            }
        })
    }

    /// Completes the message: `8=FIX.4.4|9=<body length>|` before the body and
    /// `10=<checksum>|` after it. Returns the whole message, valid until the writer changes.
    #[inline]
    pub fn finish(&mut self) -> &[u8] {
        let body_len = self.pos - BODY_START;
        let length_digits = digit_count(body_len as u64);
        let start =
            BODY_START - 1 - length_digits - BODY_LENGTH_PREFIX.len() - BEGIN_STRING_FIELD.len();
        let mut at = start;
        self.buf[at..at + BEGIN_STRING_FIELD.len()].copy_from_slice(BEGIN_STRING_FIELD);
        at += BEGIN_STRING_FIELD.len();
        self.buf[at..at + BODY_LENGTH_PREFIX.len()].copy_from_slice(BODY_LENGTH_PREFIX);
        at += BODY_LENGTH_PREFIX.len();
        fill_digits(&mut self.buf[at..at + length_digits], body_len as u64);
        self.buf[BODY_START - 1] = SOH;
        let end = self.pos;
        let sum = checksum(&self.buf[start..end]);
        // reserve() kept TRAILER_LEN bytes free after the body.
        let trailer = &mut self.buf[end..end + TRAILER_LEN];
        trailer[..3].copy_from_slice(b"10=");
        trailer[3] = b'0' + sum / 100;
        put_2_digits(&mut trailer[4..6], u32::from(sum % 100));
        trailer[6] = SOH;
        &self.buf[start..end + TRAILER_LEN]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        for (value, text) in [
            (0u64, "0"),
            (7, "7"),
            (10, "10"),
            (99, "99"),
            (100, "100"),
            (12_345, "12345"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut out = vec![0u8; digit_count(value)];
            fill_digits(&mut out, value);
            assert_eq!(out, text.as_bytes());
        }
        let mut padded = [0u8; 6];
        fill_digits(&mut padded, 42);
        assert_eq!(&padded, b"000042");
    }

    fn units(units: i64, mantissa: u64, exp: u8) -> String {
        let mut w = FixWriter::new();
        w.begin(b"D").unwrap();
        w.field_units(tag::PRICE, units, Scale { mantissa, exp })
            .unwrap();
        let body = std::str::from_utf8(w.body()).unwrap();
        body.strip_prefix("35=D\x0144=")
            .unwrap()
            .strip_suffix('\x01')
            .unwrap()
            .to_owned()
    }

    #[test]
    fn decimals_are_exact_and_trimmed() {
        assert_eq!(units(35_130_000, 1, 8), "0.3513");
        assert_eq!(units(3513, 1, 4), "0.3513");
        assert_eq!(units(1, 1, 8), "0.00000001");
        assert_eq!(units(100_000_000, 1, 8), "1");
        assert_eq!(units(123_450_000_000, 1, 8), "1234.5");
        assert_eq!(units(0, 1, 8), "0");
        assert_eq!(units(-5, 1, 1), "-0.5");
        assert_eq!(units(42, 1, 0), "42");
        assert_eq!(units(23, 5, 2), "1.15");
        assert_eq!(units(12, 10, 0), "120");
        assert_eq!(units(i64::MAX, 1, 19), "0.9223372036854775807");
        assert_eq!(units(i64::MIN, 1, 0), "-9223372036854775808");
    }

    /// The decimal text of `units x scale` as the writer first wrote it: every digit zero-padded
    /// into a scratch array, the fraction's zeros trimmed by a scan. The oracle for the writer.
    fn units_by_scan(units: i64, mantissa: u64, exp: u8) -> String {
        let magnitude = units.unsigned_abs() * mantissa;
        let decimals = exp as usize;
        let digits_len = digit_count(magnitude).max(decimals + 1);
        let mut scratch = [0u8; U64_DIGITS_MAX];
        fill_digits(&mut scratch[..digits_len], magnitude);
        let (int, fraction) = scratch[..digits_len].split_at(digits_len - decimals);
        let fraction_len = fraction
            .iter()
            .rposition(|&d| d != b'0')
            .map_or(0, |l| l + 1);
        let mut text = String::from(if units < 0 { "-" } else { "" });
        text.push_str(std::str::from_utf8(int).unwrap());
        if fraction_len > 0 {
            text.push('.');
            text.push_str(std::str::from_utf8(&fraction[..fraction_len]).unwrap());
        }
        text
    }

    #[test]
    fn decimals_equal_the_scanned_digits_and_parse_back() {
        let seed = 0x00f1_e1d5_u64;
        println!("seed {seed:#x}");
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..100_000 {
            let exp = rng.u8(..=DECIMALS_MAX);
            let mantissa = [1, 1, 1, 5, 10, 25][rng.usize(..6)];
            // Values of every length, and round ones (trailing zeros to trim).
            let digits = rng.u32(..19);
            let Some(mut value) = rng
                .i64(..10i64.pow(digits))
                .checked_mul(10i64.pow(rng.u32(..4)))
            else {
                continue;
            };
            if rng.bool() {
                value = -value;
            }
            if value.unsigned_abs().checked_mul(mantissa).is_none() {
                continue;
            }
            let text = units(value, mantissa, exp);
            assert_eq!(
                text,
                units_by_scan(value, mantissa, exp),
                "{value} x {mantissa}e-{exp}"
            );
            // Within the parser's own digit limit.
            if mantissa == 1 && value.unsigned_abs() < 10u64.pow(15) {
                let scale = Scale { mantissa: 1, exp };
                let magnitude = text.trim_start_matches('-').as_bytes();
                assert_eq!(
                    crate::decimal::parse_units(magnitude, scale),
                    Ok(value.abs()),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn bad_scales_and_overflow_are_errors() {
        let mut w = FixWriter::new();
        w.begin(b"D").unwrap();
        let bad = |mantissa, exp| FixEncodeError::BadScale {
            tag: 44,
            mantissa,
            exp,
        };
        assert_eq!(
            w.field_units(
                tag::PRICE,
                1,
                Scale {
                    mantissa: 0,
                    exp: 2
                }
            ),
            Err(bad(0, 2))
        );
        assert_eq!(
            w.field_units(
                tag::PRICE,
                1,
                Scale {
                    mantissa: 1,
                    exp: 20
                }
            ),
            Err(bad(1, 20))
        );
        assert_eq!(
            w.field_units(
                tag::PRICE,
                i64::MAX,
                Scale {
                    mantissa: 3,
                    exp: 2
                }
            ),
            Err(FixEncodeError::NumberTooLarge {
                tag: 44,
                units: i64::MAX
            })
        );
        assert_eq!(w.body(), b"35=D\x01");
    }

    #[test]
    fn a_full_buffer_is_an_error_not_a_panic() {
        let mut w = FixWriter::new();
        w.begin(b"0").unwrap();
        let long = [b'x'; 100];
        let mut written = 0;
        let err = loop {
            match w.field(tag::TEXT, &long) {
                Ok(()) => written += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, FixEncodeError::MessageTooLong { tag: 58 });
        assert!(written >= 4);
        let message = w.finish();
        assert!(message.len() <= FIX_MESSAGE_LEN_MAX);
        assert!(message.ends_with(b"\x01"));
    }
}
