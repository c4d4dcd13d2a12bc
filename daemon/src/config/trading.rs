//! `[[instruments]]`, `[risk]` and `[strategy]`: what is traded, within which limits, how.
//! Amounts in the file are decimals in the instrument's assets, strategy sizes in its ticks and
//! lots; here they become the engine's integer units.

use levibot_engine::pipeline::reference;
use levibot_engine::risk::{
    COLLAR_BPS_MAX, INSTRUMENT_NOTIONAL_MAX, Notional, OPEN_ORDERS_MAX, QTY_UNITS_MAX,
    RATE_WINDOW_MAX, RISK_INSTRUMENTS_MAX, RateLimit, RiskLimits, RiskLimitsError, TradingState,
    notional_from_decimal_parts,
};
use levibot_engine::strategy::maker::{MakerParams, StrategyParamsError};
use levibot_engine::strategy::model::load_signal_model;
use levibot_engine::strategy::signal::{SIGNAL_INPUT_NAMES, SIGNAL_INPUTS, SignalParams};
use levibot_gateway::decimal::{DecimalError, Scale, parse_units};
use levibot_gateway::instrument::{Instrument, InstrumentTable};

use super::StrategySettings;
use super::reader::{self, Base, Problems, Section};

/// Longest rate-limit window: one hour.
pub const RATE_WINDOW_MS_MAX: i64 = 3_600_000;
/// Longest duplicate-order window: one minute.
pub const DUPLICATE_WINDOW_US_MAX: i64 = 60_000_000;
/// Largest strategy size or distance in ticks or lots (keeps every product inside `i64`).
const TICKS_LOTS_MAX: i64 = 1_000_000_000_000;
/// Largest real-valued strategy parameter (thresholds, multiples, weights).
const REAL_MAX: f64 = 1e9;

/// What `loss_state` may name: the states a loss trip may move to.
const LOSS_STATES: &[(&str, TradingState)] = &[
    (TradingState::ReduceOnly.name(), TradingState::ReduceOnly),
    (TradingState::Halted.name(), TradingState::Halted),
];

/// The strategy kind of `[strategy]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Maker,
    Signal,
}

/// `[strategy]`: (kind, id).
pub(super) fn strategy(p: &mut Problems, mut s: Section<'_>) -> (Option<Kind>, Option<u16>) {
    let kind = s.required(
        p,
        "kind",
        reader::choice(&[("maker", Kind::Maker), ("signal", Kind::Signal)]),
    );
    let id = s.or(p, "id", 1, reader::int(0..=i64::from(u16::MAX)));
    s.finish(p);
    (kind, id.map(|id| id as u16))
}

/// An instrument's own risk limits, in units.
#[derive(Clone, Copy, Debug)]
struct InstrumentRisk {
    collar_bps: u32,
    order_qty_max_units: i64,
    order_notional_max: Notional,
    position_max_units: i64,
    open_orders_max: u32,
}

/// The risk-set-wide limits of `[risk]`.
#[derive(Clone, Copy, Debug)]
struct GlobalRisk {
    open_orders_max: u32,
    gross_exposure_max: Notional,
    net_exposure_max: Notional,
    loss_max: Notional,
    loss_state: TradingState,
    order_rate: RateLimit,
    message_rate: RateLimit,
    fill_rate: RateLimit,
    duplicate_window_ns: u64,
}

/// A quote-asset amount: a positive decimal that is a whole number of notional units.
fn amount(value: &toml::Value) -> Result<Notional, String> {
    let text = reader::decimal(value)?;
    let notional = reader::decimal_parts(&text)
        .and_then(|(mantissa, scale)| notional_from_decimal_parts(mantissa, scale))
        .filter(|n| *n <= INSTRUMENT_NOTIONAL_MAX)
        .ok_or_else(|| {
            format!(
                "{text} is too large or has more than {} decimals",
                levibot_engine::risk::NOTIONAL_EXP
            )
        })?;
    if notional == 0 {
        return Err("0 is not a limit: must be positive".into());
    }
    Ok(notional)
}

/// A base-asset quantity in the instrument's quantity units (`instrument` unknown: the text is
/// only checked).
fn quantity(
    instrument: Option<&Instrument>,
) -> impl FnOnce(&toml::Value) -> Result<Option<i64>, String> + '_ {
    move |value| {
        let text = reader::decimal(value)?;
        let Some(instrument) = instrument else {
            return Ok(None);
        };
        let scale = instrument.qty_scale;
        let units = parse_units(text.as_bytes(), scale).map_err(|e| match e {
            DecimalError::NotMultiple => format!(
                "{text} is not a whole number of {} (the base asset's precision)",
                scale.unit()
            ),
            e => format!("{text}: {e}"),
        })?;
        if !(1..=QTY_UNITS_MAX).contains(&units) {
            return Err(format!(
                "{text} is outside {}..={}",
                scale.unit(),
                scale.to_decimal(QTY_UNITS_MAX)
            ));
        }
        Ok(Some(units))
    }
}

fn rate(p: &mut Problems, parent: &mut Section<'_>, name: &'static str) -> Option<RateLimit> {
    let mut s = parent.required_table(p, name)?;
    let count_max = s.required(p, "count_max", reader::int(1..=RATE_WINDOW_MAX as i64));
    let window_ms = s.required(p, "window_ms", reader::int(1..=RATE_WINDOW_MS_MAX));
    s.finish(p);
    Some(RateLimit {
        count_max: count_max? as u32,
        window_ns: window_ms? as u64 * 1_000_000,
    })
}

/// `[risk]`.
fn global_risk(p: &mut Problems, mut s: Section<'_>) -> Option<GlobalRisk> {
    let open_orders_max = s.required(
        p,
        "open_orders_max",
        reader::int(1..=OPEN_ORDERS_MAX as i64),
    );
    let gross_exposure_max = s.required(p, "gross_exposure_max", amount);
    let net_exposure_max = s.required(p, "net_exposure_max", amount);
    let loss_max = s.required(p, "loss_max", amount);
    let loss_state = s.required(p, "loss_state", reader::choice(LOSS_STATES));
    let order_rate = rate(p, &mut s, "order_rate");
    let message_rate = rate(p, &mut s, "message_rate");
    let fill_rate = rate(p, &mut s, "fill_rate");
    let duplicate_window_us = s.required(
        p,
        "duplicate_window_us",
        reader::int(1..=DUPLICATE_WINDOW_US_MAX),
    );
    s.finish(p);
    Some(GlobalRisk {
        open_orders_max: open_orders_max? as u32,
        gross_exposure_max: gross_exposure_max?,
        net_exposure_max: net_exposure_max?,
        loss_max: loss_max?,
        loss_state: loss_state?,
        order_rate: order_rate?,
        message_rate: message_rate?,
        fill_rate: fill_rate?,
        duplicate_window_ns: duplicate_window_us? as u64 * 1_000,
    })
}

/// The risk keys of one `[[instruments]]` table.
fn instrument_risk(
    p: &mut Problems,
    s: &mut Section<'_>,
    instrument: Option<&Instrument>,
) -> Option<InstrumentRisk> {
    let collar_bps = s.required(p, "collar_bps", reader::int(1..=i64::from(COLLAR_BPS_MAX)));
    let order_qty_max = s.required(p, "order_qty_max", quantity(instrument));
    let order_notional_max = s.required(p, "order_notional_max", amount);
    let position_max = s.required(p, "position_max", quantity(instrument));
    let open_orders_max = s.required(
        p,
        "open_orders_max",
        reader::int(1..=OPEN_ORDERS_MAX as i64),
    );
    Some(InstrumentRisk {
        collar_bps: collar_bps? as u32,
        order_qty_max_units: order_qty_max??,
        order_notional_max: order_notional_max?,
        position_max_units: position_max??,
        open_orders_max: open_orders_max? as u32,
    })
}

/// `n` ticks or lots of `unit` units each, if the product fits.
fn times(n: i64, unit: i64) -> Result<i64, String> {
    n.checked_mul(unit)
        .ok_or_else(|| format!("{n} x {unit} units overflows"))
}

/// `[instruments.maker]`: the reference parameters (`pipeline::reference::maker_params`) for
/// every key left out.
fn maker(
    p: &mut Problems,
    mut s: Section<'_>,
    instrument: Option<&Instrument>,
    risk: Option<&InstrumentRisk>,
) -> Option<MakerParams> {
    let before = p.len();
    let positive = || reader::int(1..=TICKS_LOTS_MAX);
    let half_spread = s.or(p, "half_spread_ticks", 2, positive());
    let quote_lots = s.or(p, "quote_lots", reference::QUOTE_LOTS, positive());
    let skew = s.or(
        p,
        "skew_ticks_per_quote",
        1.0,
        reader::float(0.0..=REAL_MAX),
    );
    let requote = s.or(
        p,
        "requote_threshold_ticks",
        0,
        reader::int(0..=TICKS_LOTS_MAX),
    );
    let inventory = s.or(
        p,
        "inventory_max_lots",
        10 * reference::QUOTE_LOTS,
        positive(),
    );
    let post_only = s.or(p, "post_only", false, reader::boolean);
    let key = |name: &str| s.key(name);
    let (half_spread_key, quote_lots_key, requote_key, inventory_key) = (
        key("half_spread_ticks"),
        key("quote_lots"),
        key("requote_threshold_ticks"),
        key("inventory_max_lots"),
    );
    let path = s.path().to_owned();
    s.finish(p);
    let (half_spread, quote_lots, skew, requote, inventory, post_only) = (
        half_spread?,
        quote_lots?,
        skew?,
        requote?,
        inventory?,
        post_only?,
    );
    if inventory < quote_lots {
        p.push(
            inventory_key.clone(),
            format!("{inventory} is below quote_lots ({quote_lots}): the maker would never quote"),
        );
    }
    let instrument = instrument?;
    let (tick, lot) = (instrument.tick_units, instrument.lot_units);
    let mut units =
        |key: &String, n: i64, unit: i64| times(n, unit).map_err(|e| p.push(key.clone(), e)).ok();
    let half_spread_units = units(&half_spread_key, half_spread, tick);
    let quote_qty = units(&quote_lots_key, quote_lots, lot);
    let requote_threshold_units = units(&requote_key, requote, tick);
    let inventory_max = units(&inventory_key, inventory, lot);
    let params = MakerParams {
        half_spread_units: half_spread_units?,
        quote_qty: quote_qty?,
        skew_units_per_qty: skew * tick as f64 / (quote_lots as f64 * lot as f64),
        requote_threshold_units: requote_threshold_units?,
        inventory_max: inventory_max?,
        post_only,
    };
    if let Some(risk) = risk
        && params.quote_qty > risk.order_qty_max_units
    {
        p.push(
            quote_lots_key,
            format!(
                "{quote_lots} lots = {} of the base asset, above order_qty_max ({}): risk would \
                 refuse every quote",
                instrument.qty_scale.to_decimal(params.quote_qty),
                instrument.qty_scale.to_decimal(risk.order_qty_max_units)
            ),
        );
    }
    if let Err(e) = params.validate() {
        p.push(format!("{path}.{}", maker_key(e.name)), params_problem(&e));
    }
    (p.len() == before).then_some(params)
}

fn maker_key(field: &str) -> &str {
    match field {
        "half_spread_units" => "half_spread_ticks",
        "quote_qty" => "quote_lots",
        "skew_units_per_qty" => "skew_ticks_per_quote",
        "requote_threshold_units" => "requote_threshold_ticks",
        "inventory_max" => "inventory_max_lots",
        other => other,
    }
}

fn params_problem(e: &StrategyParamsError) -> String {
    format!("{} (in units: {})", e.reason, e.value)
}

/// `[instruments.signal]`: every key but the weights (0 when left out) and the model is
/// required; a model (XGBoost's JSON, loaded and checked now) votes instead of the weights.
fn signal(
    p: &mut Problems,
    mut s: Section<'_>,
    instrument: Option<&Instrument>,
    base: Base<'_>,
) -> Option<SignalParams> {
    let before = p.len();
    let model = s.optional(p, "model", reader::file(base)).map(|file| {
        file.and_then(|file| {
            load_signal_model(&file)
                .map_err(|e| p.push(s.key("model"), e.to_string()))
                .ok()
        })
    });
    let mut weights = [0.0; SIGNAL_INPUTS];
    if let Some(mut w) = s.table(p, "weights") {
        for (weight, name) in weights.iter_mut().zip(SIGNAL_INPUT_NAMES) {
            if let Some(x) = w.or(p, name, 0.0, reader::float(-REAL_MAX..=REAL_MAX)) {
                *weight = x;
            }
        }
        let (path, present) = (w.path().to_owned(), w.is_present());
        w.finish(p);
        if matches!(model, Some(Some(_))) {
            if present {
                p.push(
                    path,
                    "a model votes instead of the weights: give one or the other",
                );
            }
        } else if weights.iter().all(|&x| x == 0.0) {
            p.push(
                path,
                "every weight is 0 (or left out): the strategy would never trade",
            );
        }
    }
    let positive = || reader::float(f64::MIN_POSITIVE..=REAL_MAX);
    let entry_threshold = s.required(p, "entry_threshold", positive());
    let risk_budget = s.required(p, "risk_budget", reader::decimal);
    let atr_multiple = s.required(p, "atr_multiple", positive());
    let take_profit_atr = s.required(p, "take_profit_atr", positive());
    let stop_loss_atr = s.required(p, "stop_loss_atr", positive());
    let qty_max_lots = s.required(p, "qty_max_lots", reader::int(1..=TICKS_LOTS_MAX));
    let path = s.path().to_owned();
    s.finish(p);
    let instrument = instrument?;
    // Quote asset -> price units x quantity units (what size = budget / (k x ATR) needs).
    let unit = |scale: Scale| scale.mantissa as f64 / 10f64.powi(i32::from(scale.exp));
    let risk_budget = risk_budget?
        .parse::<f64>()
        .map(|quote| quote / (unit(instrument.price_scale) * unit(instrument.qty_scale)))
        .ok()
        .filter(|b| b.is_finite() && *b > 0.0);
    if risk_budget.is_none() {
        p.push(
            format!("{path}.risk_budget"),
            "must be a positive amount of the quote asset",
        );
    }
    let qty_max = times(qty_max_lots?, instrument.lot_units)
        .map_err(|e| p.push(format!("{path}.qty_max_lots"), e))
        .ok();
    let params = SignalParams {
        weights,
        entry_threshold: entry_threshold?,
        risk_budget: risk_budget?,
        atr_multiple: atr_multiple?,
        take_profit_atr: take_profit_atr?,
        stop_loss_atr: stop_loss_atr?,
        qty_max: qty_max?,
        model: model?,
        price_unit: unit(instrument.price_scale),
    };
    if let Err(e) = params.validate() {
        let key = match e.name {
            "qty_max" => "qty_max_lots".to_owned(),
            name if SIGNAL_INPUT_NAMES.contains(&name) => format!("weights.{name}"),
            name => name.to_owned(),
        };
        p.push(format!("{path}.{key}"), params_problem(&e));
    }
    (p.len() == before).then_some(params)
}

/// A strategy table that does not belong to `strategy.kind`.
fn wrong_strategy_table(p: &mut Problems, section: Option<Section<'_>>, kind: &str) {
    if let Some(section) = section.filter(Section::is_present) {
        p.push(
            section.path().to_owned(),
            format!("strategy.kind is {kind:?}: remove this table or change the kind"),
        );
    }
}

/// What `[[instruments]]`, `[risk]` and `[strategy]` give.
pub(super) struct Trading {
    pub(super) instruments: InstrumentTable,
    pub(super) strategy: StrategySettings,
    pub(super) risk_limits: RiskLimits,
}

/// `[[instruments]]` and `[risk]` against the exchangeInfo's instruments (`None`: it could not
/// be read; every key is still checked as far as it can be without it).
pub(super) fn trading(
    p: &mut Problems,
    root: &mut Section<'_>,
    all: Option<&[Instrument]>,
    exchange_info_label: &str,
    kind: Option<Kind>,
    base: Base<'_>,
) -> Option<Trading> {
    let before = p.len();
    let risk = root
        .required_table(p, "risk")
        .and_then(|s| global_risk(p, s));
    let entries = match root.value("instruments") {
        None => {
            p.push("instruments", "missing: at least one [[instruments]] table");
            None
        }
        Some(toml::Value::Array(items)) if !items.is_empty() => {
            if items.len() > RISK_INSTRUMENTS_MAX {
                p.push(
                    "instruments",
                    format!(
                        "{} instruments, more than the {RISK_INSTRUMENTS_MAX} one risk set covers",
                        items.len()
                    ),
                );
            }
            Some(items)
        }
        Some(other) => {
            p.push(
                "instruments",
                reader::wrong_type("one or more [[instruments]] tables", other),
            );
            None
        }
    };
    let mut chosen: Vec<Option<Instrument>> = Vec::new();
    let mut each_risk: Vec<Option<InstrumentRisk>> = Vec::new();
    let mut makers: Vec<Option<MakerParams>> = Vec::new();
    let mut signals: Vec<Option<SignalParams>> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (index, item) in entries.into_iter().flatten().enumerate() {
        let Some(table) = item.as_table() else {
            p.push(
                format!("instruments[{index}]"),
                reader::wrong_type("a table", item),
            );
            chosen.push(None);
            continue;
        };
        // Tables are named by symbol when they have a usable one, else by position.
        let symbol = table
            .get("symbol")
            .and_then(|v| v.as_str())
            .filter(|s| {
                !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .map(str::to_ascii_uppercase);
        let label = format!(
            "instruments[{}]",
            symbol.as_deref().unwrap_or(&index.to_string())
        );
        let mut s = Section::new(label, Some(table));
        let instrument = s
            .required(p, "symbol", |v| {
                let text = reader::string(32)(v)?;
                let Some(symbol) = symbol.as_deref() else {
                    return Err(format!(
                        "{text:?} is not a symbol (ASCII letters and digits)"
                    ));
                };
                if seen.iter().any(|s| s == symbol) {
                    return Err(format!("{symbol} is configured twice"));
                }
                let Some(all) = all else { return Ok(None) };
                all.iter()
                    .find(|i| i.symbol.as_str() == symbol)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| {
                        format!("{symbol} is not in exchangeInfo ({exchange_info_label})")
                    })
            })
            .flatten();
        seen.extend(symbol.clone());
        let risk_of = instrument_risk(p, &mut s, instrument.as_ref());
        let maker_table = s.table(p, "maker");
        let signal_table = s.table(p, "signal");
        match kind {
            Some(Kind::Maker) => {
                wrong_strategy_table(p, signal_table, "maker");
                makers.push(
                    maker_table.and_then(|m| maker(p, m, instrument.as_ref(), risk_of.as_ref())),
                );
            }
            Some(Kind::Signal) => {
                wrong_strategy_table(p, maker_table, "signal");
                match signal_table {
                    Some(t) if t.is_present() => {
                        signals.push(signal(p, t, instrument.as_ref(), base))
                    }
                    Some(t) => {
                        p.push(
                            t.path().to_owned(),
                            "missing (required when strategy.kind = \"signal\")",
                        );
                        signals.push(None);
                    }
                    None => signals.push(None),
                }
            }
            None => {}
        }
        s.finish(p);
        each_risk.push(risk_of);
        chosen.push(instrument);
    }
    // Without exchangeInfo (its problem is reported under venue.exchange_info) the instruments,
    // and the limits built on their filters, cannot be checked further.
    if p.len() != before || all.is_none() {
        return None;
    }
    let chosen: Vec<Instrument> = chosen.into_iter().flatten().collect();
    let instruments = match InstrumentTable::new(chosen) {
        Ok(table) => table,
        Err(e) => {
            p.push("instruments", e.to_string());
            return None;
        }
    };
    let strategy = match kind? {
        Kind::Maker => StrategySettings::Maker(makers.into_iter().flatten().collect()),
        Kind::Signal => StrategySettings::Signal(signals.into_iter().flatten().collect()),
    };
    let risk_limits = risk_limits(p, &instruments, &each_risk, risk?)?;
    Some(Trading {
        instruments,
        strategy,
        risk_limits,
    })
}

fn risk_limits(
    p: &mut Problems,
    instruments: &InstrumentTable,
    each: &[Option<InstrumentRisk>],
    global: GlobalRisk,
) -> Option<RiskLimits> {
    let refs: Vec<&Instrument> = instruments.iter().collect();
    let mut limits = match RiskLimits::for_instruments(&refs) {
        Ok(limits) => limits,
        Err(e) => {
            // A filter of exchangeInfo the risk engine cannot take.
            p.push(e.key.clone(), format!("exchangeInfo: {}", e.problem));
            return None;
        }
    };
    for (limit, risk) in limits.instruments_mut().zip(each.iter().flatten()) {
        limit.collar_bps = risk.collar_bps;
        limit.order_qty_max_units = risk.order_qty_max_units;
        limit.order_notional_max = risk.order_notional_max;
        limit.position_max_units = risk.position_max_units;
        limit.open_orders_max = risk.open_orders_max;
    }
    limits.open_orders_max = global.open_orders_max;
    limits.gross_exposure_max = global.gross_exposure_max;
    limits.net_exposure_max = global.net_exposure_max;
    limits.loss_max = global.loss_max;
    limits.loss_state = global.loss_state;
    limits.order_rate = global.order_rate;
    limits.message_rate = global.message_rate;
    limits.fill_rate = global.fill_rate;
    limits.duplicate_window_ns = global.duplicate_window_ns;
    match limits.validate() {
        Ok(()) => Some(limits),
        Err(e) => {
            p.push(config_key_of_limit(&e), e.problem.to_string());
            None
        }
    }
}

/// The file's key for a [`RiskLimitsError`] key (`order_rate.window_ns` ->
/// `risk.order_rate.window_ms`, `instruments[X].position_max_units` ->
/// `instruments[X].position_max`).
pub(super) fn config_key_of_limit(e: &RiskLimitsError) -> String {
    let key = e.key.as_str();
    if key.starts_with("instruments") {
        return key.strip_suffix("_units").unwrap_or(key).to_owned();
    }
    let key = match key.strip_suffix(".window_ns") {
        Some(rate) => format!("{rate}.window_ms"),
        None if key == "duplicate_window_ns" => "duplicate_window_us".to_owned(),
        None => key.to_owned(),
    };
    format!("risk.{key}")
}
