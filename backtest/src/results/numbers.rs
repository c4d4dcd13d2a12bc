//! Numbers for output: exact integer amounts as the nearest `f64` (for the JSON summary and
//! the curves), and figures formatted for people (the report's summary table).

use levibot_gateway::decimal::Scale;
use levibot_gateway::fix::civil_from_unix_days;

/// A unit of account: `mantissa x 10^-exp` of an asset (a price unit times a quantity unit
/// is a notional unit; times `1 / FEE_SCALE`, a fee unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Unit {
    pub mantissa: i128,
    pub exp: u32,
}

impl Unit {
    pub fn of(scale: Scale) -> Unit {
        Unit {
            mantissa: i128::from(scale.mantissa),
            exp: u32::from(scale.exp),
        }
    }

    /// This unit times `other` (`None` if the mantissa overflows).
    pub fn times(self, other: Unit) -> Option<Unit> {
        Some(Unit {
            mantissa: self.mantissa.checked_mul(other.mantissa)?,
            exp: self.exp + other.exp,
        })
    }

    /// This unit divided by `10^digits`.
    pub fn shifted(self, digits: u32) -> Unit {
        Unit {
            mantissa: self.mantissa,
            exp: self.exp + digits,
        }
    }

    /// `count` of this unit as the nearest `f64`.
    pub fn to_f64(self, count: i128) -> f64 {
        match count.checked_mul(self.mantissa) {
            Some(exact) => scaled_to_f64(exact, self.exp),
            // Out of 128 bits: two roundings instead of one.
            None => count as f64 * self.mantissa as f64 / 10f64.powi(self.exp as i32),
        }
    }
}

/// `value x 10^-exp` written out exactly (`-0.0125` for `(-125, 4)`).
pub(super) fn decimal_string(value: i128, exp: u32) -> String {
    let digits = value.unsigned_abs().to_string();
    let exp = exp as usize;
    let sign = if value < 0 { "-" } else { "" };
    if exp == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = exp + 1);
    let (int, frac) = padded.split_at(padded.len() - exp);
    format!("{sign}{int}.{frac}")
}

/// `value x 10^-exp` as the nearest `f64` (through its exact decimal string: Rust's parser
/// rounds correctly, so a decimal of up to 15 significant digits prints back as itself).
pub(super) fn scaled_to_f64(value: i128, exp: u32) -> f64 {
    if value == 0 {
        return 0.0;
    }
    decimal_string(value, exp)
        .parse()
        .expect("a decimal string parses as f64")
}

/// `1234567` as `1,234,567`.
pub(super) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A figure for people: thousands grouped with 2 decimals from 1,000 up (none when whole),
/// else 6 significant digits with trailing zeros dropped (`0.000123457`, `-12.5`, `0`).
pub(super) fn people(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a >= 1000.0 {
        let cents = (a * 100.0).round();
        if cents < u64::MAX as f64 {
            let cents = cents as u64;
            return match cents % 100 {
                0 => format!("{sign}{}", grouped(cents / 100)),
                c => format!("{sign}{}.{c:02}", grouped(cents / 100)),
            };
        }
        return format!("{v:e}");
    }
    // The decimal exponent as Rust writes it (exact, where `log10` is the platform's).
    let scientific = format!("{a:e}");
    let magnitude: i32 = scientific
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = (5 - magnitude).clamp(0, 15) as usize;
    let text = format!("{a:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "0" {
        return "0".to_string();
    }
    format!("{sign}{text}")
}

/// An optional ratio as a percentage with one decimal (`45.0%`), or `n/a`.
pub(super) fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "n/a".to_string(),
    }
}

/// An optional figure for people, or `n/a`.
pub(super) fn people_or_na(v: Option<f64>) -> String {
    v.map(people).unwrap_or_else(|| "n/a".to_string())
}

/// A time in ns since the Unix epoch as `2024-05-01 12:00:00.123 UTC`.
pub(super) fn utc(t_ns: u64) -> String {
    let secs = t_ns / 1_000_000_000;
    let ms = (t_ns / 1_000_000) % 1000;
    let rem = secs % 86_400;
    // The one calendar of the workspace's crates below view: the FIX timestamps'.
    let (y, m, d) = civil_from_unix_days(secs / 86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// A duration in ns as `1 h 02 min 03.5 s`, `2 min 00.0 s` or `0.250 s`.
pub(super) fn duration(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 60.0 {
        return format!("{s:.3} s");
    }
    let whole = ns / 1_000_000_000;
    let tenths = (ns / 100_000_000) % 10;
    let (h, m, sec) = (whole / 3600, (whole / 60) % 60, whole % 60);
    if h > 0 {
        format!("{h} h {m:02} min {sec:02}.{tenths} s")
    } else {
        format!("{m} min {sec:02}.{tenths} s")
    }
}

/// A span of time in its largest whole unit: `100 ms`, `1 s`, `250 µs`, `7 ns`.
pub(super) fn span(ns: u64) -> String {
    match ns {
        0 => "0 s".to_string(),
        _ if ns.is_multiple_of(1_000_000_000) => format!("{} s", ns / 1_000_000_000),
        _ if ns.is_multiple_of(1_000_000) => format!("{} ms", ns / 1_000_000),
        _ if ns.is_multiple_of(1_000) => format!("{} µs", ns / 1_000),
        _ => format!("{ns} ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_are_exact() {
        assert_eq!(decimal_string(-125, 4), "-0.0125");
        assert_eq!(decimal_string(125, 0), "125");
        assert_eq!(decimal_string(123_456, 2), "1234.56");
        assert_eq!(decimal_string(0, 3), "0.000");
        assert_eq!(scaled_to_f64(35_130_000, 8), 0.3513);
        assert_eq!(scaled_to_f64(-1, 22), -1e-22);
        assert_eq!(scaled_to_f64(i128::MIN, 0), i128::MIN as f64);
    }

    #[test]
    fn units_multiply_and_convert() {
        let price = Unit {
            mantissa: 5,
            exp: 2,
        };
        let qty = Unit {
            mantissa: 1,
            exp: 1,
        };
        let notional = price.times(qty).unwrap();
        assert_eq!(notional.to_f64(3), 0.015);
        assert_eq!(notional.shifted(6).to_f64(3_000_000), 0.015);
        let huge = Unit {
            mantissa: i128::MAX,
            exp: 0,
        };
        assert!(huge.times(huge).is_none());
        assert_eq!(huge.to_f64(2), 2.0 * i128::MAX as f64);
    }

    #[test]
    fn figures_for_people() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(people(0.0), "0");
        assert_eq!(people(-12.5), "-12.5");
        assert_eq!(people(0.000_123_456_7), "0.000123457");
        assert_eq!(people(1_234_567.891), "1,234,567.89");
        assert_eq!(people(-1000.0), "-1,000");
        assert_eq!(people(2500.5), "2,500.50");
        assert_eq!(people(1e-30), "0");
        assert_eq!(people(999.9999999), "1000");
        assert_eq!(people(100.0), "100");
        assert_eq!(people(0.1), "0.1");
        assert_eq!(people(f64::NAN), "n/a");
        assert_eq!(percent(Some(0.45)), "45.0%");
        assert_eq!(percent(None), "n/a");
    }

    #[test]
    fn times_for_people() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        // 2024-02-29 23:59:59.999 UTC (a leap day).
        assert_eq!(
            utc(1_709_251_199_999_000_000),
            "2024-02-29 23:59:59.999 UTC"
        );
        assert_eq!(duration(250_000_000), "0.250 s");
        assert_eq!(duration(120_000_000_000), "2 min 00.0 s");
        assert_eq!(duration(3_723_500_000_000), "1 h 02 min 03.5 s");
        assert_eq!(span(100_000_000), "100 ms");
        assert_eq!(span(10_000_000_000), "10 s");
        assert_eq!(span(250_000), "250 µs");
        assert_eq!(span(7), "7 ns");
    }
}
