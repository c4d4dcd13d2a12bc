//! Tardis CSV rows: one buffered reader per file (gzip or plain, told by the first two bytes),
//! one line at a time into a reused buffer, split into fields without allocating; and the
//! parsers of the fields, whose errors name the file, the line and the column.

use std::fmt::Display;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use rust_decimal::Decimal;

use crate::input::InputError;

/// Longest line accepted, in bytes (a Tardis row is about 100; a trade id may be a UUID). A
/// longer line is an error, so that a file without newlines cannot grow the line buffer.
pub(super) const LINE_LEN_MAX: usize = 4096;
/// Most columns a header may have.
pub(super) const COLUMNS_MAX: usize = 32;
/// Largest timestamp accepted, in µs: one that still fits in u64 nanoseconds.
const TIMESTAMP_US_MAX: u64 = u64::MAX / 1000;
/// Read buffer of each file (and of the decompressed stream of a gzip file).
const READ_BUFFER: usize = 64 * 1024;
/// The gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One Tardis CSV file, read a row at a time.
pub(super) struct CsvReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    /// The current line, without its line end; reused from row to row.
    line: Vec<u8>,
    /// Byte ranges of the current line's fields; capacity: the header's columns.
    fields: Vec<(usize, usize)>,
    /// Columns of the header; every row must have as many.
    columns: usize,
    /// 1-based number of the current line.
    line_no: u64,
    /// Column of `local_timestamp`.
    local_column: usize,
    /// `local_timestamp` of the current row, µs (0 before the first row).
    local: u64,
}

impl CsvReader {
    /// Opens `path` and reads its header, which must name every column in `names` (in any
    /// order; other columns are allowed and ignored). Returns the reader and the index of each
    /// name. `names` must include `local_timestamp`, which every row is checked against.
    pub(super) fn open<const N: usize>(
        path: &Path,
        names: [&'static str; N],
    ) -> Result<(CsvReader, [usize; N]), InputError> {
        let io = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = BufReader::with_capacity(READ_BUFFER, File::open(path).map_err(io)?);
        let gzip = file.fill_buf().map_err(io)?.starts_with(&GZIP_MAGIC);
        let reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                READ_BUFFER,
                MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(file)
        };
        let mut csv = CsvReader {
            path: path.to_owned(),
            reader,
            line: Vec::with_capacity(LINE_LEN_MAX + 1),
            fields: Vec::with_capacity(COLUMNS_MAX + 1),
            columns: COLUMNS_MAX,
            line_no: 0,
            local_column: 0,
            local: 0,
        };
        if !csv.read_line()? {
            return Err(csv.error_at(1, "the file is empty: no header line"));
        }
        csv.split();
        if csv.fields.len() > COLUMNS_MAX {
            return Err(csv.error(format!("the header has more than {COLUMNS_MAX} columns")));
        }
        csv.columns = csv.fields.len();
        let mut indices = [0; N];
        for (index, name) in indices.iter_mut().zip(names) {
            *index = (0..csv.columns)
                .find(|&i| csv.field(i) == name.as_bytes())
                .ok_or_else(|| csv.error(format!("the header has no column {name:?}")))?;
        }
        csv.local_column = names
            .iter()
            .position(|&n| n == "local_timestamp")
            .map(|i| indices[i])
            .ok_or_else(|| csv.error("no local_timestamp column asked for (a bug)"))?;
        Ok((csv, indices))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next row (blank lines are skipped): checks its column count and that its
    /// `local_timestamp` does not go back. `false` at the end of the file.
    pub(super) fn next_row(&mut self) -> Result<bool, InputError> {
        loop {
            if !self.read_line()? {
                return Ok(false);
            }
            if self.line.is_empty() {
                continue;
            }
            self.split();
            if self.fields.len() != self.columns {
                let found = 1 + self.line.iter().filter(|&&b| b == b',').count();
                return Err(self.error(format!(
                    "{found} columns where the header has {}",
                    self.columns
                )));
            }
            let local = parse_timestamp(self.field(self.local_column))
                .map_err(|problem| self.column_error("local_timestamp", problem))?;
            if local < self.local {
                return Err(self.column_error(
                    "local_timestamp",
                    format!(
                        "{local} goes back in time (the row before has {})",
                        self.local
                    ),
                ));
            }
            self.local = local;
            return Ok(true);
        }
    }

    /// `local_timestamp` of the current row, µs.
    pub(super) fn local(&self) -> u64 {
        self.local
    }

    /// Field `index` of the current row.
    pub(super) fn field(&self, index: usize) -> &[u8] {
        let (start, end) = self.fields[index];
        &self.line[start..end]
    }

    /// An error about the current line.
    pub(super) fn error(&self, problem: impl Display) -> InputError {
        self.error_at(self.line_no, problem)
    }

    /// An error about one column of the current line.
    pub(super) fn column_error(&self, column: &str, problem: impl Display) -> InputError {
        self.error(format_args!("column {column}: {problem}"))
    }

    fn error_at(&self, line: u64, problem: impl Display) -> InputError {
        InputError::Format {
            path: self.path.clone(),
            line,
            problem: problem.to_string(),
        }
    }

    /// Bytes the reader's buffers hold (the line and the field table), for the memory test.
    #[cfg(test)]
    pub(super) fn buffer_capacity(&self) -> usize {
        self.line.capacity() + self.fields.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    /// Reads one line into `line`, without its `\n` or `\r\n`. `false` at the end of the file.
    fn read_line(&mut self) -> Result<bool, InputError> {
        self.line.clear();
        let read = (&mut self.reader)
            .take(LINE_LEN_MAX as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(|source| InputError::Io {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        } else if self.line.len() > LINE_LEN_MAX {
            return Err(self.error(format!("a line longer than {LINE_LEN_MAX} bytes")));
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(true)
    }

    /// Splits `line` at its commas into `fields`, at most one more than the header's columns
    /// (enough to tell that a row has too many, without growing the table). Tardis does not
    /// quote fields, and neither does this reader.
    fn split(&mut self) {
        let limit = self.columns + 1;
        self.fields.clear();
        let mut start = 0;
        for (at, _) in self.line.iter().enumerate().filter(|(_, b)| **b == b',') {
            self.fields.push((start, at));
            start = at + 1;
            if self.fields.len() == limit {
                return;
            }
        }
        self.fields.push((start, self.line.len()));
    }
}

/// A field for an error message: at most 40 bytes of it, quoted.
pub(super) fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    let more = if cut.len() < bytes.len() { "..." } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(cut))
}

/// A timestamp in µs since the epoch: decimal digits, at most `u64::MAX / 1000` (so that it
/// fits in nanoseconds).
pub(super) fn parse_timestamp(text: &[u8]) -> Result<u64, String> {
    parse_u64(text)
        .filter(|&t| t <= TIMESTAMP_US_MAX)
        .ok_or_else(|| {
            format!(
                "{} is not a timestamp (whole microseconds since the epoch, at most {TIMESTAMP_US_MAX})",
                shown(text)
            )
        })
}

/// Decimal digits only (no sign, no spaces) that fit in u64.
pub(super) fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |value, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// `true` or `false`, as Tardis writes them.
pub(super) fn parse_bool(text: &[u8]) -> Result<bool, String> {
    match text {
        b"true" => Ok(true),
        b"false" => Ok(false),
        _ => Err(format!("{} is not true or false", shown(text))),
    }
}

/// A non-negative decimal, exactly: `123`, `0.35`, or with an exponent as Tardis writes small
/// numbers (`1e-05`, `2.5E-7`, `1e+3`). Converted with integer arithmetic on the decimal's
/// mantissa and scale, never through a float. A value `rust_decimal` cannot hold exactly (more
/// than 28 decimals, or above its 96-bit mantissa) is an error.
pub(super) fn parse_decimal(text: &[u8]) -> Result<Decimal, String> {
    let bad = |why: &str| format!("{} is not a number: {why}", shown(text));
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (int, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], Some(&mantissa[at + 1..])),
        None => (mantissa, None),
    };
    let digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    if !digits(int) || fraction.is_some_and(|f| !digits(f)) {
        return Err(bad("expected digits, optionally a point and more digits"));
    }
    // Only digits and at most one point: valid UTF-8.
    let mantissa = std::str::from_utf8(mantissa).map_err(|_| bad("not ASCII"))?;
    let mut value = Decimal::from_str_exact(mantissa)
        .map_err(|e| bad(&format!("{e} (rust_decimal holds 28 decimals, 96 bits)")))?;
    let Some(exponent) = exponent else {
        return Ok(value);
    };
    let (negative, digits_of) = match exponent.first() {
        Some(b'-') => (true, &exponent[1..]),
        Some(b'+') => (false, &exponent[1..]),
        _ => (false, exponent),
    };
    let shift = parse_u64(digits_of)
        .filter(|&s| s <= 2 * u64::from(Decimal::MAX_SCALE))
        .ok_or_else(|| bad("the exponent is not a whole number of at most 56"))?
        as u32;
    let too_fine = || bad("more than 28 decimals");
    if negative {
        // value x 10^-shift: the same mantissa with `shift` more decimals.
        value = value.normalize();
        let scale = value.scale() + shift;
        if scale > Decimal::MAX_SCALE {
            return Err(too_fine());
        }
        value.set_scale(scale).map_err(|_| too_fine())?;
    } else {
        // value x 10^shift: fewer decimals, then whole powers of ten.
        let fewer = value.scale().min(shift);
        value
            .set_scale(value.scale() - fewer)
            .map_err(|_| too_fine())?;
        for _ in fewer..shift {
            value = value
                .checked_mul(Decimal::TEN)
                .ok_or_else(|| bad("too large for rust_decimal"))?;
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal(b"0.35130000"), Ok(d("0.3513")));
        assert_eq!(parse_decimal(b"12"), Ok(d("12")));
        assert_eq!(parse_decimal(b"1e-05"), Ok(d("0.00001")));
        assert_eq!(parse_decimal(b"1.5E-7"), Ok(d("0.00000015")));
        assert_eq!(parse_decimal(b"2.50e+3"), Ok(d("2500")));
        assert_eq!(parse_decimal(b"25e2"), Ok(d("2500")));
        assert_eq!(
            parse_decimal(b"1e-28"),
            Ok(d("0.0000000000000000000000000001"))
        );
        // 0.1 + 0.2 through a float would not be this.
        assert_eq!(parse_decimal(b"3e-1"), Ok(d("0.3")));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1.",
            b".5",
            b"1..2",
            b"1e",
            b"1e-",
            b"e5",
            b"1,5",
            b" 1",
            b"NaN",
            b"1e-29",
            b"1e99",
            b"0.00000000000000000000000000001",
        ] {
            assert!(parse_decimal(bad).is_err(), "{:?}", shown(bad));
        }
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_u64(b"1700000000000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert!(parse_timestamp(b"18446744073709552").is_err());
        assert_eq!(
            parse_timestamp(b"18446744073709551"),
            Ok(18_446_744_073_709_551)
        );
        assert_eq!(parse_bool(b"true"), Ok(true));
        assert!(parse_bool(b"True").is_err());
    }
}
