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

/// `text` with the value of any `key` it holds replaced by `value`: what a backtest's parameter
/// sweep edits (`levictl set` keeps to [`set_limit`]'s risk limits). Keys are named as problems
/// name them: `risk.loss_max`, `risk.order_rate.count_max`,
/// `instruments[NKNUSDT].maker.half_spread_ticks`, `instruments[0].collar_bps` (an element of an
/// array of tables by symbol or position; `instruments.NKNUSDT.collar_bps` too). The value is
/// written as TOML of the kind it replaces: a string stays a string (`500` is written `"500"`);
/// anything else is taken as TOML if it is a TOML value (`3`, `0.25`, `true`, `"x"`), else
/// written as a string. The key must be in the text (a key left out for its default is not: write
/// it in the file to set it). The caller validates the edited text whole.
pub fn set_key(text: &str, key: &str, value: &str) -> Result<String, ConfigProblem> {
    let key = key.trim();
    let problem = |why: String| ConfigProblem {
        key: key.to_owned(),
        problem: why,
    };
    let document = DeTable::parse(text).map_err(|_| problem("the config is not TOML".into()))?;
    let (span, old) = key_value(document.get_ref(), key).map_err(problem)?;
    let rendered = render_like(old, value).map_err(problem)?;
    let (Some(before), Some(after)) = (text.get(..span.start), text.get(span.end..)) else {
        return Err(problem(
            "the value's place in the text is not found".to_owned(),
        ));
    };
    Ok(format!("{before}{rendered}{after}"))
}

/// The span and value of `key` in `document` (see [`set_key`]), or why not.
fn key_value<'a, 'i>(
    document: &'a DeTable<'i>,
    key: &str,
) -> Result<(Range<usize>, &'a DeValue<'i>), String> {
    let mut segments = key.split('.').peekable();
    let mut table = document;
    let mut path = String::new();
    loop {
        let Some(segment) = segments.next() else {
            return Err("not a key".to_owned());
        };
        let (name, mut selector) = match segment.split_once('[') {
            Some((name, rest)) => {
                let selector = rest
                    .strip_suffix(']')
                    .filter(|s| !s.is_empty() && !s.contains(['[', ']']))
                    .ok_or_else(|| {
                        format!("{segment:?} is not `name` or `name[index or symbol]`")
                    })?;
                (name, Some(selector))
            }
            None => (segment, None),
        };
        if name.is_empty() {
            return Err("an empty part in the key".to_owned());
        }
        let within = if path.is_empty() {
            "the config".to_owned()
        } else {
            path.clone()
        };
        path = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        let mut value = entry(table, name).ok_or_else(|| {
            format!(
                "`{name}` is not in {within} (a key left out for its default must be written in \
                 the file to be set)"
            )
        })?;
        // `instruments.NKNUSDT.x` selects as `instruments[NKNUSDT].x` does.
        if selector.is_none() && matches!(value.get_ref(), DeValue::Array(_)) {
            selector = segments.next();
        }
        if let Some(selector) = selector {
            let DeValue::Array(items) = value.get_ref() else {
                return Err(format!("{path} is not an array of tables"));
            };
            value = select(items, selector)
                .ok_or_else(|| format!("no {path}[{selector}] in the config"))?;
            path = format!("{path}[{selector}]");
        }
        match (segments.peek(), value.get_ref()) {
            (None, DeValue::Table(_)) => {
                return Err(format!("{path} is a table: name a key in it"));
            }
            (None, DeValue::Array(items))
                if items
                    .iter()
                    .any(|i| matches!(i.get_ref(), DeValue::Table(_))) =>
            {
                return Err(format!("{path} is an array of tables: name a key in one"));
            }
            (None, old) => return Ok((value.span(), old)),
            (Some(_), DeValue::Table(t)) => table = t,
            (Some(_), _) => return Err(format!("{path} is a value, not a table")),
        }
    }
}

/// `value` as TOML text in place of `old`.
fn render_like(old: &DeValue<'_>, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("an empty value".to_owned());
    }
    if value.len() > VALUE_LEN_MAX {
        return Err(format!("the value is longer than {VALUE_LEN_MAX} bytes"));
    }
    let literal = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    Ok(match (old, literal) {
        (DeValue::String(_), Some(toml::Value::String(_))) => value.to_owned(),
        (DeValue::String(_), _) => toml::Value::String(value.to_owned()).to_string(),
        (_, Some(_)) => value.to_owned(),
        (_, None) => toml::Value::String(value.to_owned()).to_string(),
    })
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
    fn any_key_the_text_holds_is_set_as_the_kind_it_replaces() {
        let text = format!(
            "{TEXT}[instruments.maker]\nhalf_spread_ticks = 1 # narrow\nskew_ticks_per_quote = 1.0\n"
        );
        let edited = set_key(&text, "instruments[NKNUSDT].maker.half_spread_ticks", "3").unwrap();
        assert!(
            edited.contains("half_spread_ticks = 3 # narrow"),
            "{edited}"
        );
        for key in [
            "instruments.NKNUSDT.maker.half_spread_ticks",
            "instruments[1].maker.half_spread_ticks",
            "instruments[nknusdt].maker.half_spread_ticks",
        ] {
            assert_eq!(set_key(&text, key, " 3 ").unwrap(), edited);
        }
        // A string stays a string; other kinds take the value as TOML.
        let edited = set_key(&text, "risk.loss_max", "250").unwrap();
        assert!(edited.contains("loss_max = \"250\" "), "{edited}");
        let edited = set_key(&text, "risk.loss_max", "\"250\"").unwrap();
        assert!(edited.contains("loss_max = \"250\" "), "{edited}");
        let edited = set_key(&text, "risk.order_rate.window_ms", "20").unwrap();
        assert!(
            edited.contains("{ count_max = 1000, window_ms = 20 }"),
            "{edited}"
        );
        let edited = set_key(
            &text,
            "instruments[NKNUSDT].maker.skew_ticks_per_quote",
            "0.5",
        );
        assert!(edited.unwrap().contains("skew_ticks_per_quote = 0.5\n"));
        // Not TOML of its own: written as a string, for validation to refuse by its key.
        let edited = set_key(&text, "instruments[BTCUSDT].collar_bps", "wide").unwrap();
        assert!(edited.contains("collar_bps = \"wide\"\n"), "{edited}");
    }

    #[test]
    fn a_key_not_in_the_text_is_named_with_why() {
        let why = |key: &str| {
            let p = set_key(TEXT, key, "1").unwrap_err();
            assert_eq!(p.key, key);
            p.problem
        };
        assert!(why("risk.nope").contains("`nope` is not in risk"));
        assert!(why("strategy.kind").contains("`strategy` is not in the config"));
        assert!(why("instruments[ETHUSDT].collar_bps").contains("no instruments[ETHUSDT]"));
        assert!(why("instruments[7].collar_bps").contains("no instruments[7]"));
        assert!(why("risk.order_rate").contains("a table"));
        assert!(why("instruments").contains("array of tables"));
        assert!(why("risk.loss_max.x").contains("not a table"));
        assert!(why("risk..x").contains("empty part"));
        let p = set_key(TEXT, "risk.loss_max", " ").unwrap_err();
        assert!(p.problem.contains("empty value"));
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
