//! A view as a CSV row (RFC 4180) of chosen columns, and the header of one kind's export.

use std::fmt::Write as _;

use super::View;
use super::json::Val;
use crate::kind::{COMMON_COLUMNS, RecordKind};
use crate::time::format_unix_ns;

impl View {
    /// One CSV row of `columns` (a field the view lacks is empty), without the line end.
    pub fn csv_row(&self, columns: &[&str], out: &mut String) {
        let fields = self.fields();
        for (n, column) in columns.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            match fields.iter().find(|(name, _)| name == column).map(|f| &f.1) {
                None | Some(Val::Null) => {}
                Some(Val::Bool(b)) => {
                    let _ = write!(out, "{b}");
                }
                Some(Val::U64(v)) => {
                    let _ = write!(out, "{v}");
                }
                Some(Val::I64(v)) => {
                    let _ = write!(out, "{v}");
                }
                Some(Val::F64(v)) if v.is_finite() => {
                    let _ = write!(out, "{v}");
                }
                Some(Val::F64(_)) => {}
                Some(Val::Str(text)) => csv_text(text, out),
                Some(Val::Decimal(d)) => {
                    let _ = write!(out, "{d}");
                }
                Some(Val::Time(ns)) => csv_text(&format_unix_ns(*ns), out),
                // The JSON array of the JSON object, in one cell.
                Some(levels @ Val::Levels(_)) => {
                    if let Ok(text) = serde_json::to_string(levels) {
                        csv_text(&text, out);
                    }
                }
            }
        }
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
fn csv_text(text: &str, out: &mut String) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// The CSV header line for one kind: [`COMMON_COLUMNS`] then its columns.
pub fn csv_columns(kind: RecordKind) -> Vec<&'static str> {
    COMMON_COLUMNS
        .iter()
        .chain(kind.columns())
        .map(|column| column.0)
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_text_is_quoted_when_needed() {
        let mut out = String::new();
        csv_text("a,\"b\"\nc", &mut out);
        assert_eq!(out, "\"a,\"\"b\"\"\nc\"");
    }
}
