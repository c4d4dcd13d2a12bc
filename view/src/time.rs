//! Times for people and for `--since`/`--from`/`--to`: RFC 3339 formatting and parsing, short
//! durations, and the [`Bound`] a command line names (a journal position or a time).

/// `2026-11-26T01:02:03.123456789Z` (RFC 3339, UTC, nanoseconds).
pub fn format_unix_ns(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 -> (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 (`2026-11-26T01:02:03.5Z`, `+02:00` offsets; a space for `T`; seconds and
/// the offset optional, no offset meaning UTC; or a bare date, its midnight UTC) into ns since
/// the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.trim().as_bytes();
    let num = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(i64::from(year), month, day) * 86_400;
    let mut nanos: i64 = 0;
    let mut rest = &b[10..];
    if !rest.is_empty() {
        if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 || rest[3] != b':' {
            return None;
        }
        let (hour, minute) = (num(&rest[1..3])?, num(&rest[4..6])?);
        if hour > 23 || minute > 59 {
            return None;
        }
        secs += i64::from(hour * 3600 + minute * 60);
        rest = &rest[6..];
        if rest.first() == Some(&b':') {
            let second = num(rest.get(1..3)?)?;
            if second > 60 {
                return None;
            }
            secs += i64::from(second);
            rest = &rest[3..];
            if rest.first() == Some(&b'.') {
                let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 {
                    return None;
                }
                let mut scale = 100_000_000;
                for &c in &rest[1..1 + digits.min(9)] {
                    nanos += i64::from(c - b'0') * scale;
                    scale /= 10;
                }
                rest = &rest[1 + digits..];
            }
        }
        match rest {
            [] | [b'Z' | b'z'] => {}
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let offset = i64::from(num(&[*h1, *h2])? * 3600 + num(&[*m1, *m2])? * 60);
                secs -= if *sign == b'+' { offset } else { -offset };
            }
            _ => return None,
        }
    }
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).ok()
}

/// `850ns`, `1.2us`, `3.4ms`, `1.2s`.
pub fn format_duration_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.1}s", ns as f64 / 1e9),
    }
}

/// Where a `--since`, `--from` or `--to` points: a journal position or a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A [`Position`](levibot_shm::Position) as printed in the `pos` field.
    Position(u64),
    /// Ns since the Unix epoch.
    Time(u64),
}

/// Longest relative time: a year.
const RELATIVE_SECS_MAX: u64 = 366 * 86_400;

/// Parses a position (an integer, as the `pos` field prints it), an RFC 3339 time, or a time
/// relative to now (`30s`, `10m`, `2h`, `1d`).
pub fn parse_bound(arg: &str) -> Result<Bound, String> {
    parse_bound_at(arg, levibot_shm::clock::unix_now_ns())
}

fn parse_bound_at(arg: &str, now_unix_ns: u64) -> Result<Bound, String> {
    let arg = arg.trim();
    if !arg.is_empty() && arg.bytes().all(|c| c.is_ascii_digit()) {
        return arg
            .parse()
            .map(Bound::Position)
            .map_err(|_| format!("position {arg} is out of range"));
    }
    let unit = arg
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, _)| i);
    if let Some(i) = unit.filter(|&i| i > 0) {
        let secs_per = match &arg[i..] {
            "s" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => None,
        };
        if let Some(per) = secs_per {
            let n: u64 = arg[..i]
                .parse()
                .map_err(|_| format!("{arg:?}: bad number"))?;
            let secs = n.saturating_mul(per);
            if secs > RELATIVE_SECS_MAX {
                return Err(format!("{arg:?} is more than a year ago"));
            }
            return Ok(Bound::Time(
                now_unix_ns.saturating_sub(secs * 1_000_000_000),
            ));
        }
    }
    parse_rfc3339(arg).map(Bound::Time).ok_or_else(|| {
        format!(
            "{arg:?} is neither a journal position (an integer, the `pos` field), an RFC 3339 \
             time (2026-11-26T01:02:03Z) nor a relative time (30s, 10m, 2h, 1d)"
        )
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_and_parse_back() {
        let ns = 1_795_654_923_123_456_789;
        let text = format_unix_ns(ns);
        assert_eq!(text, "2026-11-26T01:02:03.123456789Z");
        assert_eq!(parse_rfc3339(&text), Some(ns));
        assert_eq!(format_unix_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_rfc3339("2026-11-26T03:02:03.5+02:00"),
            Some(1_795_654_923_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26 01:02"),
            Some(1_795_654_920_000_000_000)
        );
        assert_eq!(parse_rfc3339("2026-11-26"), Some(1_795_651_200_000_000_000));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000_000)
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-11-25T25:00",
            "2026-11-25T01:02:03+1",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // Every day of a few centuries round-trips.
        for day in (0..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn bounds_parse_positions_times_and_relative_times() {
        let now = 10_000 * 1_000_000_000;
        assert_eq!(parse_bound_at("8192", now), Ok(Bound::Position(8192)));
        assert_eq!(
            parse_bound_at("10m", now),
            Ok(Bound::Time(now - 600_000_000_000))
        );
        assert_eq!(
            parse_bound_at("2h", now),
            Ok(Bound::Time(now.saturating_sub(7_200_000_000_000)))
        );
        assert_eq!(
            parse_bound_at("1970-01-01T00:00:01Z", now),
            Ok(Bound::Time(1_000_000_000))
        );
        assert!(parse_bound_at("10 parsecs", now).is_err());
        assert!(parse_bound_at("400d", now).is_err());
    }
}
