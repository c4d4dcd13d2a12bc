//! Reading a parsed `toml::Table` key by key. Every problem is collected (never the first
//! only), each under its full key path; keys nobody asked for are reported as unknown.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::ConfigProblem;

/// Longest path accepted in the config (`PATH_MAX` counts the NUL).
pub(super) const PATH_LEN_MAX: usize = 4095;
/// Longest decimal amount, in characters: more digits than any `i128` notional holds.
pub(super) const DECIMAL_LEN_MAX: usize = 40;
/// Longest value quoted back in a problem.
const QUOTED_LEN_MAX: usize = 60;

/// The problems found so far.
#[derive(Debug, Default)]
pub(super) struct Problems(pub(super) Vec<ConfigProblem>);

impl Problems {
    pub(super) fn push(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            problem: problem.into(),
        });
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One table of the file. Hands out its keys; [`finish`](Self::finish) reports the others.
pub(super) struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    asked: Vec<&'static str>,
}

impl<'t> Section<'t> {
    /// `table` (absent: every key takes its default) at `path` (`""` for the document).
    pub(super) fn new(path: impl Into<String>, table: Option<&'t Table>) -> Section<'t> {
        Section {
            path: path.into(),
            table,
            asked: Vec::new(),
        }
    }

    /// The full key path of `name` in this table. A name that is not a bare TOML key (empty, or
    /// with a byte other than `A-Za-z0-9_-`) is quoted, so that every problem names its key:
    /// `['']` is `""`, not nothing. (Rust's string escapes: TOML's for printable text; a
    /// control character shows as `\u{1}` where TOML writes `\u0001`.)
    pub(super) fn key(&self, name: &str) -> String {
        let bare = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let name = if bare {
            name.to_owned()
        } else {
            format!("{name:?}")
        };
        if self.path.is_empty() {
            name
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// This table's key path.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The table itself (absent: `None`).
    pub(super) fn table_ref(&self) -> Option<&'t Table> {
        self.table
    }

    pub(super) fn is_present(&self) -> bool {
        self.table.is_some()
    }

    /// The raw value of `name`, marked as known.
    pub(super) fn value(&mut self, name: &'static str) -> Option<&'t Value> {
        self.asked.push(name);
        self.table?.get(name)
    }

    /// `name` converted: `Some(None)` when absent, `None` when present but bad (reported).
    pub(super) fn optional<T>(
        &mut self,
        p: &mut Problems,
        name: &'static str,
        convert: impl FnOnce(&'t Value) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.value(name) {
            None => Some(None),
            Some(value) => match convert(value) {
                Ok(t) => Some(Some(t)),
                Err(problem) => {
                    p.push(self.key(name), problem);
                    None
                }
            },
        }
    }

    /// `name` converted, or `default` when absent; `None` when bad (reported).
    pub(super) fn or<T>(
        &mut self,
        p: &mut Problems,
        name: &'static str,
        default: T,
        convert: impl FnOnce(&'t Value) -> Result<T, String>,
    ) -> Option<T> {
        self.optional(p, name, convert)
            .map(|got| got.unwrap_or(default))
    }

    /// `name` converted; `None` when missing or bad (reported).
    pub(super) fn required<T>(
        &mut self,
        p: &mut Problems,
        name: &'static str,
        convert: impl FnOnce(&'t Value) -> Result<T, String>,
    ) -> Option<T> {
        match self.optional(p, name, convert) {
            Some(Some(t)) => Some(t),
            Some(None) => {
                p.push(self.key(name), "missing (required)");
                None
            }
            None => None,
        }
    }

    /// The sub-table `name` (an absent one reads as empty: its keys take their defaults);
    /// `None` when `name` is not a table (reported).
    pub(super) fn table(&mut self, p: &mut Problems, name: &'static str) -> Option<Section<'t>> {
        let key = self.key(name);
        match self.value(name) {
            None => Some(Section::new(key, None)),
            Some(Value::Table(table)) => Some(Section::new(key, Some(table))),
            Some(other) => {
                p.push(key, wrong_type("a table", other));
                None
            }
        }
    }

    /// The sub-table `name`, which must be present.
    pub(super) fn required_table(
        &mut self,
        p: &mut Problems,
        name: &'static str,
    ) -> Option<Section<'t>> {
        let section = self.table(p, name)?;
        if section.is_present() {
            Some(section)
        } else {
            p.push(section.path, "missing (required table)");
            None
        }
    }

    /// Reports every key of the table nobody asked for.
    pub(super) fn finish(self, p: &mut Problems) {
        let Some(table) = self.table else { return };
        for name in table.keys() {
            if !self.asked.contains(&name.as_str()) {
                p.push(self.key(name), unknown_key(name, &self.asked));
            }
        }
    }
}

/// "unknown key", with the nearest known key when one is close (a typo), else the list.
fn unknown_key(name: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .min()
        .filter(|&(d, k)| d <= 2 || (name.len() > 3 && (k.contains(name) || name.contains(k))));
    match nearest {
        Some((_, k)) => format!("unknown key; did you mean `{k}`?"),
        None => {
            let mut known = known.to_vec();
            known.sort_unstable();
            known.dedup();
            format!("unknown key; expected one of: {}", known.join(", "))
        }
    }
}

/// Levenshtein distance (keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A value as quoted in a problem, shortened.
pub(super) fn quoted(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > QUOTED_LEN_MAX {
        let cut: String = text.chars().take(QUOTED_LEN_MAX).collect();
        format!("{cut}...")
    } else {
        text
    }
}

pub(super) fn wrong_type(expected: &str, found: &Value) -> String {
    format!(
        "expected {expected}, found {} {}",
        found.type_str(),
        quoted(found)
    )
}

// Converters: each takes a value and says what is wrong with it in a sentence.

/// An integer in `range`.
pub(super) fn int(range: RangeInclusive<i64>) -> impl FnOnce(&Value) -> Result<i64, String> {
    move |value| {
        let Value::Integer(n) = *value else {
            return Err(wrong_type("an integer", value));
        };
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "{n} is outside {}..={}",
                range.start(),
                range.end()
            ))
        }
    }
}

/// A number (integer or float) in `range`.
pub(super) fn float(range: RangeInclusive<f64>) -> impl FnOnce(&Value) -> Result<f64, String> {
    move |value| {
        let x = match *value {
            Value::Float(x) => x,
            Value::Integer(n) => n as f64,
            _ => return Err(wrong_type("a number", value)),
        };
        if range.contains(&x) {
            Ok(x)
        } else {
            Err(format!(
                "{x} is outside {}..={}",
                range.start(),
                range.end()
            ))
        }
    }
}

pub(super) fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type("true or false", value))
}

/// A string of `1..=len_max` bytes.
pub(super) fn string(len_max: usize) -> impl FnOnce(&Value) -> Result<String, String> {
    move |value| {
        let Value::String(s) = value else {
            return Err(wrong_type("a string", value));
        };
        if s.is_empty() || s.len() > len_max {
            return Err(format!("{} bytes long; 1..={len_max} expected", s.len()));
        }
        Ok(s.clone())
    }
}

/// One of the named strings.
pub(super) fn choice<T: Copy>(
    choices: &'static [(&'static str, T)],
) -> impl FnOnce(&Value) -> Result<T, String> {
    move |value| {
        let names = || {
            choices
                .iter()
                .map(|(name, _)| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let Value::String(s) = value else {
            return Err(wrong_type(&names(), value));
        };
        choices
            .iter()
            .find(|(name, _)| name == s)
            .map(|&(_, t)| t)
            .ok_or_else(|| format!("{s:?} is not {}", names()))
    }
}

/// Where relative paths start (the directory of the file that names them), and what the
/// parse may reach outside the text ([`ParseOptions`](super::ParseOptions)).
#[derive(Clone, Copy, Debug)]
pub(super) struct Base<'a> {
    pub(super) dir: &'a Path,
    pub(super) options: &'a super::ParseOptions,
}

impl Base<'_> {
    /// `Err` (why) when `path` is outside the directory the options confine files to.
    pub(super) fn confined(&self, path: &Path) -> Result<(), String> {
        self.options.confined(path)
    }
}

/// A path to something validation opens or inspects (a file, the journal's directory):
/// [`path`], and inside [`ParseOptions::files_under`](super::ParseOptions::files_under) if set.
pub(super) fn file(base: Base<'_>) -> impl FnOnce(&Value) -> Result<PathBuf, String> + '_ {
    move |value| {
        let path = path(base.dir)(value)?;
        base.confined(&path)?;
        Ok(path)
    }
}

/// A path; relative paths are relative to `base` (the config file's directory).
pub(super) fn path(base: &Path) -> impl FnOnce(&Value) -> Result<PathBuf, String> + '_ {
    move |value| {
        let Value::String(s) = value else {
            return Err(wrong_type("a path (string)", value));
        };
        if s.is_empty() || s.len() > PATH_LEN_MAX || s.contains('\0') {
            return Err(format!(
                "{s:?} is not a path (1..={PATH_LEN_MAX} bytes, no NUL)"
            ));
        }
        Ok(resolve(base, s))
    }
}

pub(super) fn resolve(base: &Path, text: &str) -> PathBuf {
    let path = Path::new(text);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// A non-negative decimal amount, as text: a string such as `"0.25"` or an integer. Floats
/// are refused: `0.1` is not exactly representable.
pub(super) fn decimal(value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Integer(n) => n.to_string(),
        Value::Float(x) => {
            return Err(format!(
                "{x} is a float: write the amount as a string (\"{x}\"), floats are inexact"
            ));
        }
        other => return Err(wrong_type("a decimal string such as \"0.25\"", other)),
    };
    check_decimal(&text)?;
    Ok(text)
}

/// `digits[.digits]`, not negative, at most [`DECIMAL_LEN_MAX`] characters.
pub(super) fn check_decimal(text: &str) -> Result<(), String> {
    let (int, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if text.len() > DECIMAL_LEN_MAX
        || (int.is_empty() && fraction.is_empty())
        || !digits(int)
        || !digits(fraction)
    {
        return Err(format!(
            "{text:?} is not a non-negative decimal number such as \"1000\" or \"0.25\" (at most \
             {DECIMAL_LEN_MAX} characters)"
        ));
    }
    Ok(())
}

/// The decimal `text` (checked by [`check_decimal`]) as `(mantissa, scale)`, if it fits.
pub(super) fn decimal_parts(text: &str) -> Option<(i128, u32)> {
    let (int, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = fraction.trim_end_matches('0');
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b.checked_sub(b'0')?))?;
    }
    Some((mantissa, fraction.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion_and_strangers_the_list() {
        assert_eq!(edit_distance("lgo_level", "log_level"), 2);
        assert_eq!(
            unknown_key("lgo_level", &["log_level", "log_format"]),
            "unknown key; did you mean `log_level`?"
        );
        let far = unknown_key("colour", &["log_level", "log_format"]);
        assert!(far.contains("log_format, log_level"), "{far}");
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(decimal_parts("1000"), Some((1000, 0)));
        assert_eq!(decimal_parts("0.2500"), Some((25, 2)));
        assert_eq!(decimal_parts(".5"), Some((5, 1)));
        for bad in ["", ".", "-1", "1e3", "1.2.3", "0x10", " 1"] {
            assert!(check_decimal(bad).is_err(), "{bad:?}");
        }
        assert!(decimal(&Value::Float(0.1)).unwrap_err().contains("string"));
        assert_eq!(decimal(&Value::Integer(7)).unwrap(), "7");
    }
}
