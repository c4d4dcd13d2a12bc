//! Where keys are in the config's text (toml's spanned parse): the line a problem points at,
//! and `levictl set`'s edit. A risk limit's new value is spliced over the old value's span, so
//! every comment and the layout of the file are kept; the caller then validates the edited text
//! whole.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigProblem;
use super::reader::check_decimal;

/// How a settable key's value is written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Integer,
    /// A decimal amount or quantity, written as a TOML string.
    Decimal,
    /// `"reduce_only"` or `"halted"`.
    LossState,
}

/// The settable keys of `[risk]`.
const RISK_KEYS: [(&str, Form); 12] = [
    ("open_orders_max", Form::Integer),
    ("gross_exposure_max", Form::Decimal),
    ("net_exposure_max", Form::Decimal),
    ("loss_max", Form::Decimal),
    ("loss_state", Form::LossState),
    ("order_rate.count_max", Form::Integer),
    ("order_rate.window_ms", Form::Integer),
    ("message_rate.count_max", Form::Integer),
    ("message_rate.window_ms", Form::Integer),
    ("fill_rate.count_max", Form::Integer),
    ("fill_rate.window_ms", Form::Integer),
    ("duplicate_window_us", Form::Integer),
];

/// The settable keys of each `[[instruments]]` table.
const INSTRUMENT_KEYS: [(&str, Form); 5] = [
    ("collar_bps", Form::Integer),
    ("order_qty_max", Form::Decimal),
    ("order_notional_max", Form::Decimal),
    ("position_max", Form::Decimal),
    ("open_orders_max", Form::Integer),
];

/// Longest value accepted from the command line.
const VALUE_LEN_MAX: usize = 64;

/// Where a settable key lives.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// The key as problems name it: `risk.loss_max`, `instruments[NKNUSDT].collar_bps`.
    key: String,
    /// `Some(symbol)`: in that instrument's table; `None`: under `[risk]`.
    symbol: Option<String>,
    /// The key's path inside that table (`order_rate.count_max`).
    path: Vec<String>,
    form: Form,
}

fn not_settable(key: &str) -> (String, String) {
    let risk: Vec<&str> = RISK_KEYS.iter().map(|(k, _)| *k).collect();
    let each: Vec<&str> = INSTRUMENT_KEYS.iter().map(|(k, _)| *k).collect();
    (
        key.to_owned(),
        format!(
            "not a settable risk limit; settable: risk.{{{}}} and instruments.<SYMBOL>.{{{}}} \
             (edit the file and reload for anything else)",
            risk.join(","),
            each.join(",")
        ),
    )
}

fn target(key: &str) -> Result<Target, (String, String)> {
    if let Some(rest) = key.strip_prefix("risk.") {
        let &(name, form) = RISK_KEYS
            .iter()
            .find(|(k, _)| *k == rest)
            .ok_or_else(|| not_settable(key))?;
        return Ok(Target {
            key: format!("risk.{name}"),
            symbol: None,
            path: name.split('.').map(str::to_owned).collect(),
            form,
        });
    }
    // instruments.SYM.field or instruments[SYM].field
    let (symbol, field) = if let Some(rest) = key.strip_prefix("instruments[") {
        rest.split_once("].").ok_or_else(|| not_settable(key))?
    } else if let Some(rest) = key.strip_prefix("instruments.") {
        rest.split_once('.').ok_or_else(|| not_settable(key))?
    } else {
        return Err(not_settable(key));
    };
    let &(name, form) = INSTRUMENT_KEYS
        .iter()
        .find(|(k, _)| *k == field)
        .ok_or_else(|| not_settable(key))?;
    if symbol.is_empty() || !symbol.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err((key.to_owned(), format!("{symbol:?} is not a symbol")));
    }
    let symbol = symbol.to_ascii_uppercase();
    Ok(Target {
        key: format!("instruments[{symbol}].{name}"),
        symbol: Some(symbol),
        path: vec![name.to_owned()],
        form,
    })
}

/// `value` as TOML text of the key's form.
fn render(form: Form, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.len() > VALUE_LEN_MAX {
        return Err(format!("the value is longer than {VALUE_LEN_MAX} bytes"));
    }
    match form {
        Form::Integer => value
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("{value:?} is not an integer")),
        Form::Decimal => check_decimal(value).map(|()| format!("\"{value}\"")),
        Form::LossState => match value {
            "reduce_only" | "halted" => Ok(format!("\"{value}\"")),
            _ => Err(format!("{value:?} is not \"reduce_only\" or \"halted\"")),
        },
    }
}

fn entry<'a, 'i>(table: &'a DeTable<'i>, name: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == name)
        .map(|(_, value)| value)
}

/// The byte range of the target's value in `text`.
fn value_span(text: &str, target: &Target) -> Option<Range<usize>> {
    let document = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = document.get_ref();
    if let Some(symbol) = &target.symbol {
        let DeValue::Array(items) = entry(table, "instruments")?.get_ref() else {
            return None;
        };
        table = items.iter().find_map(|item| match item.get_ref() {
            DeValue::Table(t) => entry(t, "symbol")
                .and_then(|s| s.get_ref().as_str())
                .filter(|s| s.eq_ignore_ascii_case(symbol))
                .map(|_| t),
            _ => None,
        })?;
    } else {
        table = entry(table, "risk")?.get_ref().as_table()?;
    }
    let (last, parents) = target.path.split_last()?;
    for name in parents {
        table = entry(table, name)?.get_ref().as_table()?;
    }
    Some(entry(table, last)?.span())
}

/// The 1-based line of `offset` in `text`.
fn line(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The element of an array of tables selected by `[index]` or `[SYMBOL]`.
fn select<'a, 'i>(
    items: &'a [Spanned<DeValue<'i>>],
    selector: &str,
) -> Option<&'a Spanned<DeValue<'i>>> {
    if let Ok(index) = selector.parse::<usize>() {
        return items.get(index);
    }
    items.iter().find(|item| {
        item.get_ref()
            .as_table()
            .and_then(|t| entry(t, "symbol"))
            .and_then(|s| s.get_ref().as_str())
            .is_some_and(|s| s.eq_ignore_ascii_case(selector))
    })
}

/// The offset of the deepest part of `key` (`instruments[NKNUSDT].collar_bps`,
/// `daemon.lgo_level`) present in `document`: the key itself, else the table it is missing
/// from.
fn key_offset(document: &DeTable<'_>, key: &str) -> Option<usize> {
    let mut table = document;
    let mut offset = None;
    for segment in key.split('.') {
        let (name, selector) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(']')?)),
            None => (segment, None),
        };
        let Some((k, mut value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        offset = Some(k.span().start);
        if let Some(selector) = selector {
            let DeValue::Array(items) = value.get_ref() else {
                break;
            };
            let Some(item) = select(items, selector) else {
                break;
            };
            value = item;
            offset = Some(value.span().start);
        }
        match value.get_ref().as_table() {
            Some(t) => table = t,
            None => break,
        }
    }
    offset
}

/// Adds ` (line N)` to every problem whose key (or its table) is in `text`.
pub(super) fn add_lines(text: &str, problems: &mut [ConfigProblem]) {
    let Ok(document) = DeTable::parse(text) else {
        return;
    };
    for problem in problems.iter_mut().filter(|p| !p.key.is_empty()) {
        if let Some(offset) = key_offset(document.get_ref(), &problem.key) {
            problem.problem = format!("{} (line {})", problem.problem, line(text, offset));
        }
    }
}

/// `text` with `key` set to `value`, or (the key, why not).
pub(super) fn set_limit(text: &str, key: &str, value: &str) -> Result<String, (String, String)> {
    let target = target(key.trim())?;
    let rendered = render(target.form, value).map_err(|e| (target.key.clone(), e))?;
    let span = value_span(text, &target).ok_or_else(|| {
        let what = match &target.symbol {
            Some(symbol) => format!("no instrument {symbol} with this key in the config"),
            None => "not in the config".to_owned(),
        };
        (target.key.clone(), what)
    })?;
    let (Some(before), Some(after)) = (text.get(..span.start), text.get(span.end..)) else {
        return Err((
            target.key,
            "the value's place in the text is not found".to_owned(),
        ));
    };
    Ok(format!("{before}{rendered}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[risk]
loss_max = "1000"        # the day's stop
order_rate = { count_max = 1000, window_ms = 10 }

[[instruments]]
symbol = "BTCUSDT"
collar_bps = 100
[[instruments]]
symbol = "nknusdt"
collar_bps = 500  # wide
"#;

    #[test]
    fn values_are_replaced_in_place_keeping_comments() {
        let edited = set_limit(TEXT, "risk.loss_max", "250.5").unwrap();
        assert!(
            edited.contains("loss_max = \"250.5\"        # the day's stop"),
            "{edited}"
        );
        let edited = set_limit(TEXT, "risk.order_rate.count_max", "7").unwrap();
        assert!(
            edited.contains("{ count_max = 7, window_ms = 10 }"),
            "{edited}"
        );
        let edited = set_limit(TEXT, "instruments.NKNUSDT.collar_bps", "42").unwrap();
        assert!(edited.contains("collar_bps = 42  # wide"), "{edited}");
        assert!(edited.contains("collar_bps = 100\n"), "{edited}");
        let same = set_limit(TEXT, "instruments[nknusdt].collar_bps", "42").unwrap();
        assert_eq!(same, edited);
    }

    #[test]
    fn problems_point_at_their_line() {
        let problem = |key: &str| ConfigProblem {
            key: key.to_owned(),
            problem: "x".to_owned(),
        };
        let mut problems = [
            problem("risk.loss_max"),
            problem("risk.order_rate.window_ms"),
            problem("instruments[NKNUSDT].collar_bps"),
            problem("instruments[1].open_orders_max"),
            problem("instruments[BTCUSDT]"),
            problem("layout"),
            problem(""),
        ];
        add_lines(TEXT, &mut problems);
        let lines: Vec<&str> = problems.iter().map(|p| p.problem.as_str()).collect();
        assert_eq!(
            lines,
            [
                "x (line 3)",
                "x (line 4)",
                "x (line 11)",
                "x (line 9)",
                "x (line 6)",
                "x",
                "x"
            ]
        );
    }

    #[test]
    fn only_risk_limits_with_values_of_their_form() {
        for key in [
            "layout.kind",
            "risk.nope",
            "instruments.NKNUSDT.symbol",
            "instruments.X",
        ] {
            let (k, why) = set_limit(TEXT, key, "1").unwrap_err();
            assert_eq!(k, key);
            assert!(why.contains("not a settable"), "{why}");
        }
        let (k, why) = set_limit(TEXT, "risk.loss_max", "-5").unwrap_err();
        assert_eq!(k, "risk.loss_max");
        assert!(why.contains("decimal"), "{why}");
        let (_, why) = set_limit(TEXT, "instruments.NKNUSDT.collar_bps", "5.5").unwrap_err();
        assert!(why.contains("integer"), "{why}");
        let (k, why) = set_limit(TEXT, "instruments.ETHUSDT.collar_bps", "5").unwrap_err();
        assert_eq!(k, "instruments[ETHUSDT].collar_bps");
        assert!(why.contains("ETHUSDT"), "{why}");
    }
}
