//! The fast path: a byte scanner for messages laid out exactly as Binance documents and sends
//! them (field order, no whitespace, no escapes). It answers `None` at the first byte that does
//! not match, and the decoder then hands the message to the general simd-json path, so the fast
//! path only ever decides messages whose meaning is unambiguous. `tests/decoder_paths.rs` checks
//! that both paths agree.
//!
//! Why hand-written: the decode budget for a corpus bookTicker is 80 ns; simd-json with reused
//! buffers takes 260 ns p50 here (`levibot-bench decode`, docs/benchmarks.md). The scanner builds
//! no tape: it checks each literal and converts each number in one pass.

use levibot_shm::records::Level;

use crate::decimal::{
    EIGHT_DECIMALS, Scale, eight_decimals_until, is_eight_digits, parse_eight_digits, parse_units,
};

/// A read position in one message.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Consumes `literal` if the input continues with it.
    #[inline]
    pub fn lit(&mut self, literal: &[u8]) -> Option<()> {
        if self.buf.get(self.pos..self.pos + literal.len())? == literal {
            self.pos += literal.len();
            Some(())
        } else {
            None
        }
    }

    /// The body of a string whose opening quote was consumed; consumes the closing quote.
    /// Strings with escapes, control bytes or non-ASCII bytes (which need UTF-8 validation; every
    /// field read here is ASCII) are left to the general path.
    #[inline]
    pub fn string_body(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos += len + 1;
        Some(&rest[..len])
    }

    /// A JSON unsigned integer (no sign, fraction or exponent; no leading zeros) of at most 19
    /// digits (so it fits u64 unchecked). One pass, eight digits at a time while eight are
    /// there (update ids and times have 11 to 13): a digit-by-digit loop with overflow checks
    /// was a fifth of a synthetic message's decoding (`levibot-bench instructions`).
    #[inline]
    pub fn u64(&mut self) -> Option<u64> {
        const DIGITS_MAX: usize = 19;
        let rest = self.buf.get(self.pos..)?;
        let mut value: u64 = 0;
        let mut len = 0;
        while len + 8 <= DIGITS_MAX
            && let Some(chunk) = rest.get(len..len + 8)
        {
            let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if !is_eight_digits(x) {
                break;
            }
            value = value * 100_000_000 + parse_eight_digits(x);
            len += 8;
        }
        while let Some(&b) = rest.get(len) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            if len == DIGITS_MAX {
                return None;
            }
            value = value * 10 + u64::from(digit);
            len += 1;
        }
        if len == 0 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        // A fraction or exponent makes it a number the general path must judge.
        if matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos += len;
        Some(value)
    }

    #[inline]
    pub fn bool(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else if self.lit(b"false").is_some() {
            Some(false)
        } else {
            None
        }
    }

    /// A quoted decimal as whole units of `scale`: Binance's 8-decimal layout in one pass up to
    /// the closing quote (see `decimal::EIGHT_DECIMALS`), anything else via `parse_units`.
    #[inline]
    pub fn units(&mut self, scale: Scale) -> Option<i64> {
        self.lit(b"\"")?;
        if scale == EIGHT_DECIMALS
            && let Some((units, len)) = eight_decimals_until(&self.buf[self.pos..], b'"')
        {
            self.pos += len + 1;
            return Some(units);
        }
        parse_units(self.string_body()?, scale).ok()
    }

    /// `[["px","qty"],...]` into `out` (up to its capacity, never growing it). Returns how many
    /// levels were read.
    #[inline]
    pub fn levels(&mut self, price: Scale, qty: Scale, out: &mut Vec<Level>) -> Option<usize> {
        self.lit(b"[")?;
        if self.lit(b"]").is_some() {
            return Some(0);
        }
        let mut count = 0;
        loop {
            self.lit(b"[")?;
            let px = self.units(price)?;
            self.lit(b",")?;
            let qty = self.units(qty)?;
            self.lit(b"]")?;
            if out.len() == out.capacity() {
                return None; // the general path reports the limit with its offset
            }
            out.push(Level { px, qty });
            count += 1;
            if self.lit(b",").is_none() {
                break;
            }
        }
        self.lit(b"]")?;
        Some(count)
    }

    /// Whether the whole input was consumed.
    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_strict() {
        assert_eq!(Cursor::new(b"123,").u64(), Some(123));
        assert_eq!(Cursor::new(b"0").u64(), Some(0));
        assert_eq!(Cursor::new(b"01").u64(), None);
        assert_eq!(Cursor::new(b"1.5").u64(), None);
        assert_eq!(Cursor::new(b"1e5").u64(), None);
        assert_eq!(Cursor::new(b"-1").u64(), None);
        assert_eq!(Cursor::new(b"18446744073709551616").u64(), None);
        // Eight digits at a time, the rest one by one, up to 19; the cursor moves past them.
        for (text, want) in [
            (&b"12345678,"[..], Some(12_345_678)),
            (b"1765432109876]", Some(1_765_432_109_876)),
            (b"9999999999999999999", Some(9_999_999_999_999_999_999)),
            (b"1234567812345678", Some(1_234_567_812_345_678)),
            (b"99999999999999999999", None),
            (b"1234567.5", None),
            (b"12345678e3", None),
            (b"0123456789", None),
            (b",", None),
        ] {
            let mut c = Cursor::new(text);
            assert_eq!(c.u64(), want, "{}", String::from_utf8_lossy(text));
            if let Some(v) = want {
                assert_eq!(c.pos, v.to_string().len());
            }
        }
    }

    #[test]
    fn strings_with_escapes_go_to_the_general_path() {
        assert_eq!(Cursor::new(b"abc\"").string_body(), Some(&b"abc"[..]));
        assert_eq!(Cursor::new(b"a\\\"bc\"").string_body(), None);
        assert_eq!(Cursor::new(b"abc").string_body(), None);
        assert_eq!(Cursor::new(b"\xffabc\"").string_body(), None);
    }
}
