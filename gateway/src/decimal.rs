//! Exact conversion between the venue's decimal strings and integer ticks or lots.
//!
//! A [`Scale`] says what one unit is worth: `mantissa x 10^-exp` (a tick size of `0.00010000` is
//! mantissa 1, exp 4; a tick of `0.05` is mantissa 5, exp 2). [`parse_units`] turns `"0.35130000"`
//! into 3513 ticks without floating point and without rounding: a string that is not a whole
//! number of units is an error.
//!
//! Hand-written rather than going through `rust_decimal` because it runs for every price and
//! quantity on the decode path: for power-of-ten scales (every Binance tick and step size) it is
//! one pass over the digits with no division; other scales add one exact division.

use rust_decimal::Decimal;

/// Most digits a parsed number may have (integer and kept fraction digits): 10^18 < 2^63.
pub const DIGITS_MAX: usize = 18;

/// What one integer unit is worth: `mantissa x 10^-exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scale {
    pub mantissa: u64,
    pub exp: u8,
}

/// Why a decimal string is not a whole number of units. Offsets are into the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("empty number")]
    Empty,
    #[error("unexpected byte {byte:#04x} at offset {offset} of the number")]
    InvalidByte { offset: usize, byte: u8 },
    #[error("more than {DIGITS_MAX} significant digits")]
    TooManyDigits,
    #[error("not a whole multiple of the tick or step size")]
    NotMultiple,
    #[error("a tick or step size must be positive with at most {DIGITS_MAX} decimals")]
    BadScale,
}

impl Scale {
    /// The scale of a tick or step size such as `0.00010000`.
    pub fn from_decimal(size: Decimal) -> Result<Scale, DecimalError> {
        let size = size.normalize();
        if size <= Decimal::ZERO || size.scale() as usize > DIGITS_MAX {
            return Err(DecimalError::BadScale);
        }
        // At most i64::MAX: `unit` makes a Decimal of it through an i64.
        let mantissa = u64::try_from(size.mantissa())
            .ok()
            .filter(|&m| m <= i64::MAX as u64)
            .ok_or(DecimalError::BadScale)?;
        Ok(Scale {
            mantissa,
            exp: size.scale() as u8,
        })
    }

    /// The size of one unit.
    pub fn unit(&self) -> Decimal {
        Decimal::new(self.mantissa as i64, self.exp as u32)
    }

    /// `units` as a decimal, for display and config (cold path).
    pub fn to_decimal(&self, units: i64) -> Decimal {
        Decimal::from_i128_with_scale(units as i128 * self.mantissa as i128, self.exp as u32)
    }

    /// A decimal as a whole number of units (cold path).
    pub fn from_decimal_value(&self, value: Decimal) -> Result<i64, DecimalError> {
        // checked: a huge value over a tiny unit overflows (the operator would panic).
        let units = value
            .checked_div(self.unit())
            .ok_or(DecimalError::TooManyDigits)?;
        if units.fract() != Decimal::ZERO {
            return Err(DecimalError::NotMultiple);
        }
        i64::try_from(units).map_err(|_| DecimalError::TooManyDigits)
    }
}

const POW10: [u64; 19] = {
    let mut table = [1u64; 19];
    let mut i = 1;
    while i < 19 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Binance writes every price and quantity as 1 to 10 integer digits, a point and exactly 8
/// decimals, in units of 10^-8. That layout is converted here without a per-digit loop for the
/// decimals: they are one little-endian 8-byte word, checked and converted with SWAR arithmetic.
/// Measured by `levibot-bench decode` (docs/benchmarks.md): the corpus bookTicker goes from
/// 100 to 60 ns p50, digit-by-digit conversion having been 37% of the time.
pub(crate) const EIGHT_DECIMALS: Scale = Scale {
    mantissa: 1,
    exp: 8,
};

/// Most integer digits the 8-decimal layout may have: 10^10 * 10^8 < 2^63.
const EIGHT_DECIMALS_INT_DIGITS_MAX: usize = 10;

/// `<int>.<8 decimals>` in units of 10^-8, when `int` is 1..=10 digits and `fraction` 8 digits.
#[inline]
fn eight_decimals(int: &[u8], fraction: [u8; 8]) -> Option<i64> {
    if int.is_empty() || int.len() > EIGHT_DECIMALS_INT_DIGITS_MAX {
        return None;
    }
    let word = u64::from_le_bytes(fraction);
    if !is_eight_digits(word) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in int {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + digit as u64;
    }
    Some((value * 100_000_000 + parse_eight_digits(word)) as i64)
}

/// The 8-decimal layout at the start of `text`, ended by `terminator` (the scanner's closing
/// quote): the units and the bytes consumed before the terminator.
#[inline]
pub(crate) fn eight_decimals_until(text: &[u8], terminator: u8) -> Option<(i64, usize)> {
    // The integer digits read once, their value made as they are found (a scan for their end
    // and a second loop over them were a tenth of a synthetic message's decoding).
    let mut int: u64 = 0;
    let mut int_len = 0;
    loop {
        let digit = text.get(int_len)?.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if int_len == EIGHT_DECIMALS_INT_DIGITS_MAX {
            return None;
        }
        int = int * 10 + u64::from(digit);
        int_len += 1;
    }
    if int_len == 0 || text[int_len] != b'.' || text.get(int_len + 9) != Some(&terminator) {
        return None;
    }
    let word = u64::from_le_bytes(text[int_len + 1..int_len + 9].try_into().ok()?);
    if !is_eight_digits(word) {
        return None;
    }
    Some((
        (int * 100_000_000 + parse_eight_digits(word)) as i64,
        int_len + 9,
    ))
}

/// Whether all 8 bytes of `x` are ASCII digits.
#[inline]
pub(crate) fn is_eight_digits(x: u64) -> bool {
    ((x & 0xF0F0_F0F0_F0F0_F0F0)
        | ((x.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4))
        == 0x3333_3333_3333_3333
}

/// The value of 8 ASCII digits, first digit in the lowest byte: pairs, then quads, then the
/// two halves combined, in three multiplications.
#[inline]
pub(crate) fn parse_eight_digits(x: u64) -> u64 {
    let x = x.wrapping_sub(0x3030_3030_3030_3030);
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    ((x & 0x0000_00FF_0000_00FF)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((x >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32))))
        >> 32
}

/// Parses an unsigned decimal string (`123`, `0.351`, `.5`, `12.`) into whole units of `scale`.
/// Digits beyond the scale's decimals must be zeros; a value that is not a multiple of a
/// non-power-of-ten unit is an error.
#[inline]
pub fn parse_units(text: &[u8], scale: Scale) -> Result<i64, DecimalError> {
    // Binance's layout first (see EIGHT_DECIMALS); anything else takes the general loop below.
    if scale == EIGHT_DECIMALS && (10..=19).contains(&text.len()) {
        let (int, rest) = text.split_at(text.len() - 9);
        if rest[0] == b'.' {
            let fraction: [u8; 8] = rest[1..].try_into().expect("8 bytes");
            if let Some(units) = eight_decimals(int, fraction) {
                return Ok(units);
            }
        }
    }
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    let exp = scale.exp as usize;
    let mut value: u64 = 0;
    let mut significant = 0usize;
    let mut fraction_digits = 0usize;
    let mut point_seen = false;
    let mut digit_seen = false;
    for (offset, &byte) in text.iter().enumerate() {
        if byte == b'.' && !point_seen {
            point_seen = true;
            continue;
        }
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(DecimalError::InvalidByte { offset, byte });
        }
        digit_seen = true;
        if point_seen {
            if fraction_digits == exp {
                if digit != 0 {
                    return Err(DecimalError::NotMultiple);
                }
                continue;
            }
            fraction_digits += 1;
        }
        if value != 0 || digit != 0 {
            significant += 1;
            if significant > DIGITS_MAX {
                return Err(DecimalError::TooManyDigits);
            }
        }
        value = value * 10 + digit as u64;
    }
    if !digit_seen {
        return Err(DecimalError::Empty);
    }
    // Up to exp fraction digits were kept; scale the rest of the way.
    let pad = exp - fraction_digits;
    let value = value
        .checked_mul(POW10[pad])
        .filter(|v| *v <= i64::MAX as u64)
        .ok_or(DecimalError::TooManyDigits)?;
    if scale.mantissa == 1 {
        return Ok(value as i64);
    }
    if !value.is_multiple_of(scale.mantissa) {
        return Err(DecimalError::NotMultiple);
    }
    Ok((value / scale.mantissa) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn scale(s: &str) -> Scale {
        Scale::from_decimal(Decimal::from_str(s).unwrap()).unwrap()
    }

    #[test]
    fn scales_normalise() {
        assert_eq!(
            scale("0.00010000"),
            Scale {
                mantissa: 1,
                exp: 4
            }
        );
        assert_eq!(
            scale("1.00"),
            Scale {
                mantissa: 1,
                exp: 0
            }
        );
        assert_eq!(
            scale("10.00000000"),
            Scale {
                mantissa: 10,
                exp: 0
            }
        );
        assert_eq!(
            scale("0.05"),
            Scale {
                mantissa: 5,
                exp: 2
            }
        );
        assert_eq!(
            Scale::from_decimal(Decimal::ZERO),
            Err(DecimalError::BadScale)
        );
    }

    #[test]
    fn prices_become_ticks_exactly() {
        let tick = scale("0.00010000");
        assert_eq!(parse_units(b"0.35130000", tick), Ok(3513));
        assert_eq!(parse_units(b"0.3513", tick), Ok(3513));
        assert_eq!(parse_units(b"0.351", tick), Ok(3510));
        assert_eq!(parse_units(b"12", tick), Ok(120_000));
        assert_eq!(parse_units(b"12.", tick), Ok(120_000));
        assert_eq!(parse_units(b".5", tick), Ok(5000));
        assert_eq!(parse_units(b"0", tick), Ok(0));
        assert_eq!(
            parse_units(b"0.35135000", tick),
            Err(DecimalError::NotMultiple)
        );
        assert_eq!(
            parse_units(b"0.00000001", tick),
            Err(DecimalError::NotMultiple)
        );
    }

    #[test]
    fn non_power_of_ten_units_divide_exactly() {
        let tick = scale("0.05");
        assert_eq!(parse_units(b"1.15", tick), Ok(23));
        assert_eq!(parse_units(b"1.10000", tick), Ok(22));
        assert_eq!(parse_units(b"1.12", tick), Err(DecimalError::NotMultiple));
        let ten = scale("10");
        assert_eq!(parse_units(b"120.00000000", ten), Ok(12));
        assert_eq!(parse_units(b"125", ten), Err(DecimalError::NotMultiple));
    }

    #[test]
    fn malformed_numbers_are_errors_with_offsets() {
        let tick = scale("0.01");
        assert_eq!(parse_units(b"", tick), Err(DecimalError::Empty));
        assert_eq!(parse_units(b".", tick), Err(DecimalError::Empty));
        assert_eq!(
            parse_units(b"1.2.3", tick),
            Err(DecimalError::InvalidByte {
                offset: 3,
                byte: b'.'
            })
        );
        assert_eq!(
            parse_units(b"-1", tick),
            Err(DecimalError::InvalidByte {
                offset: 0,
                byte: b'-'
            })
        );
        assert_eq!(
            parse_units(b"1e5", tick),
            Err(DecimalError::InvalidByte {
                offset: 1,
                byte: b'e'
            })
        );
        assert_eq!(
            parse_units(b"99999999999999999999", tick),
            Err(DecimalError::TooManyDigits)
        );
        assert_eq!(
            parse_units(b"9999999999999999.99", tick),
            Ok(999_999_999_999_999_999)
        );
        assert_eq!(
            parse_units(b"99999999999999999.99", tick),
            Err(DecimalError::TooManyDigits)
        );
        // 18 digits that overflow only once scaled to the unit.
        let fine = scale("0.0001");
        assert_eq!(
            parse_units(b"999999999999999999", fine),
            Err(DecimalError::TooManyDigits)
        );
        assert_eq!(parse_units(b"00000000000000000000001", tick), Ok(100));
    }

    #[test]
    fn the_eight_decimal_layout_matches_the_general_loop() {
        let eight = EIGHT_DECIMALS;
        for text in [
            "0.35130000",
            "6195.00000000",
            "0.00000001",
            "9999999999.99999999",
            "1.00000000",
            "0000000001.00000000",
        ] {
            let fast = parse_units(text.as_bytes(), eight).unwrap();
            let decimal = Decimal::from_str(text).unwrap();
            assert_eq!(eight.from_decimal_value(decimal), Ok(fast), "{text}");
            let quoted = format!("{text}\"rest");
            assert_eq!(
                eight_decimals_until(quoted.as_bytes(), b'"'),
                Some((fast, text.len()))
            );
        }
        // Not the layout: the general loop decides, with its errors.
        assert_eq!(
            parse_units(b"12345678901.00000000", eight),
            Err(DecimalError::TooManyDigits)
        );
        assert_eq!(
            parse_units(b"1.0000000a", eight),
            Err(DecimalError::InvalidByte {
                offset: 9,
                byte: b'a'
            })
        );
        assert_eq!(
            parse_units(b"1.000000001", eight),
            Err(DecimalError::NotMultiple)
        );
        assert_eq!(
            parse_units(b"-.00000000", eight),
            Err(DecimalError::InvalidByte {
                offset: 0,
                byte: b'-'
            })
        );
        assert_eq!(eight_decimals_until(b"1.0000000\"", b'"'), None);
        assert_eq!(eight_decimals_until(b"12345678901.00000000\"", b'"'), None);
        assert_eq!(eight_decimals_until(b"1.00000000x", b'"'), None);
        // Cut short, no integer digits, a bad fraction byte, the widest integer part.
        for short in [
            &b""[..],
            b"1",
            b"12",
            b"1.",
            b"1.00000000",
            b".12345678\"",
            b"1.1234567a\"",
        ] {
            assert_eq!(eight_decimals_until(short, b'"'), None, "{short:?}");
        }
        assert_eq!(
            eight_decimals_until(b"1234567890.00000001\"", b'"'),
            Some((123_456_789_000_000_001, 19))
        );
        // Every byte value in the fraction: only digits pass the SWAR check.
        for b in 0..=255u8 {
            let mut text = *b"7.12345678";
            text[5] = b;
            assert_eq!(
                parse_units(&text, eight).ok(),
                b.is_ascii_digit()
                    .then(|| 712_345_678 + (b - b'0') as i64 * 10_000 - 40_000),
                "byte {b}"
            );
        }
    }

    #[test]
    fn agrees_with_rust_decimal_on_random_values() {
        let seed = 0x5eed_u64;
        let mut rng = seed;
        let scales = ["0.00000001", "0.0001", "0.01", "1", "0.05", "0.25", "10"];
        for i in 0..20_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let scale = scale(scales[(i % scales.len() as u64) as usize]);
            let units = (rng % 1_000_000_000_000) as i64;
            let text = scale.to_decimal(units).to_string();
            assert_eq!(
                parse_units(text.as_bytes(), scale),
                Ok(units),
                "seed {seed}: {text}"
            );
            assert_eq!(scale.from_decimal_value(scale.to_decimal(units)), Ok(units));
        }
    }
}
