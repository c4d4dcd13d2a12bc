//! Risk limits: one `Copy` value ([`RiskLimits`]) that is validated as a whole and replaced whole,
//! the builder that fills instrument filters from `exchangeInfo` data, and the notional unit.
//!
//! Notional (exposure, loss, min notional, max order notional) is an `i128` in units of
//! 10^-[`NOTIONAL_EXP`] of the quote asset, for every instrument. A price in units of
//! `10^-price_exp` times a quantity in units of `10^-qty_exp` is in units of
//! `10^-(price_exp + qty_exp)` of the quote asset; one fixed multiplier per instrument (computed
//! when limits are loaded) brings it to the common unit, so exposures of different instruments
//! add up exactly. They add up in *one* quote asset: every instrument of a risk set must share
//! it (validated).

use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::{Instrument, Symbol};

use super::window::{RATE_WINDOW_MAX, RECENT_ORDERS_MAX};
use super::{OPEN_ORDERS_MAX, RISK_INSTRUMENTS_MAX, TradingState};

/// Notional amounts are in units of 10^-`NOTIONAL_EXP` of the quote asset.
pub const NOTIONAL_EXP: u32 = 18;
/// One whole unit of the quote asset, in notional units.
pub const NOTIONAL_ONE: i128 = 10i128.pow(NOTIONAL_EXP);
/// A notional amount: 10^-18 units of the risk set's quote asset.
pub type Notional = i128;
/// Largest quantity limit (`position_max_units`, `order_qty_max_units`): 2^56 units, so that
/// sums of positions and open quantities stay far inside `i64` without checks.
pub const QTY_UNITS_MAX: i64 = 1 << 56;
/// Largest worst-case notional of one instrument. A reference price at which the instrument's
/// largest position limit so far would be worth more is ignored as garbage (see
/// `RiskEngine::on_market`), so each instrument's exposure stays below 2^119 and the sum over
/// [`RISK_INSTRUMENTS_MAX`] instruments below 2^125: the hot path needs no overflow checks.
pub const INSTRUMENT_NOTIONAL_MAX: Notional = 1 << 119;
/// Largest price collar: 100% either side of the reference.
pub const COLLAR_BPS_MAX: u32 = 10_000;

/// `whole` units of the quote asset as a [`Notional`].
pub const fn quote(whole: i64) -> Notional {
    whole as i128 * NOTIONAL_ONE
}

/// The decimal `mantissa x 10^-scale` (as `rust_decimal::Decimal::mantissa` and `scale` give
/// it) as a [`Notional`], if exactly representable.
pub fn notional_from_decimal_parts(mantissa: i128, scale: u32) -> Option<Notional> {
    if scale <= NOTIONAL_EXP {
        mantissa.checked_mul(10i128.checked_pow(NOTIONAL_EXP - scale)?)
    } else {
        let divisor = 10i128.checked_pow(scale - NOTIONAL_EXP)?;
        (mantissa % divisor == 0).then_some(mantissa / divisor)
    }
}

/// A sliding-window rate limit: at most `count_max` events in any `window_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// `1..=RATE_WINDOW_MAX`.
    pub count_max: u32,
    /// `> 0`.
    pub window_ns: u64,
}

/// One instrument's filters (from `exchangeInfo`) and risk limits. Prices in the instrument's
/// price units, quantities in its quantity units, notionals in [`Notional`] units.
///
/// Exchange filters follow Binance: `0` in `price_min_units`, `price_max_units`,
/// `qty_min_units`, `qty_max_units` or `notional_min` means no limit. Risk limits have no
/// "unlimited": each must be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentLimits {
    pub symbol: Symbol,
    /// Must be the same for every instrument of a risk set.
    pub quote_asset: Symbol,
    /// One price unit (`10^-quoteAssetPrecision`).
    pub price_scale: Scale,
    /// One quantity unit (`10^-baseAssetPrecision`).
    pub qty_scale: Scale,
    /// Prices must be multiples of it (`> 0`).
    pub tick_units: i64,
    /// Quantities must be multiples of it (`> 0`).
    pub lot_units: i64,
    pub price_min_units: i64,
    pub price_max_units: i64,
    pub qty_min_units: i64,
    pub qty_max_units: i64,
    /// Least `px x qty` of an order (a market order: at the reference price).
    pub notional_min: Notional,
    /// How far a limit price may be from the reference price, in basis points
    /// (`1..=COLLAR_BPS_MAX`).
    pub collar_bps: u32,
    /// Largest quantity of one order (`> 0`).
    pub order_qty_max_units: i64,
    /// Largest `px x qty` of one order (`> 0`).
    pub order_notional_max: Notional,
    /// Largest worst-case position, long or short, counting open orders (`> 0`).
    pub position_max_units: i64,
    /// Most open orders in this instrument (`1..=` the risk set's `open_orders_max`).
    pub open_orders_max: u32,
}

impl InstrumentLimits {
    /// The instrument's filters, exactly in integer units; the risk limits are left unset (0)
    /// for the caller to fill (cold path). An error names the instrument and the filter.
    pub fn from_instrument(instrument: &Instrument) -> Result<InstrumentLimits, RiskLimitsError> {
        let symbol = instrument.symbol;
        let key = |field: &str| format!("instruments[{symbol}].{field}");
        let quote_asset =
            Symbol::from_ascii(instrument.quote_asset.as_bytes()).ok_or_else(|| {
                RiskLimitsError::new(
                    key("quote_asset"),
                    LimitProblem::Invalid(format!("{:?} is not a symbol", instrument.quote_asset)),
                )
            })?;
        // The values are `rust_decimal::Decimal`s; the engine does not name the type (no
        // dependency), their inherent methods suffice.
        let units = |field: &str, scale: Scale, value| {
            scale.from_decimal_value(value).map_err(|e| {
                RiskLimitsError::new(
                    key(field),
                    LimitProblem::Invalid(format!("{value} in units of {}: {e}", scale.unit())),
                )
            })
        };
        let notional_min = {
            let d = instrument.min_notional;
            notional_from_decimal_parts(d.mantissa(), d.scale()).ok_or_else(|| {
                RiskLimitsError::new(
                    key("notional_min"),
                    LimitProblem::Invalid(format!(
                        "{d} is not a whole number of 10^-{NOTIONAL_EXP} quote units"
                    )),
                )
            })?
        };
        Ok(InstrumentLimits {
            symbol,
            quote_asset,
            price_scale: instrument.price_scale,
            qty_scale: instrument.qty_scale,
            tick_units: instrument.tick_units,
            lot_units: instrument.lot_units,
            price_min_units: units(
                "price_min_units",
                instrument.price_scale,
                instrument.min_price,
            )?,
            price_max_units: units(
                "price_max_units",
                instrument.price_scale,
                instrument.max_price,
            )?,
            qty_min_units: units("qty_min_units", instrument.qty_scale, instrument.min_qty)?,
            qty_max_units: units("qty_max_units", instrument.qty_scale, instrument.max_qty)?,
            notional_min,
            collar_bps: 0,
            order_qty_max_units: 0,
            order_notional_max: 0,
            position_max_units: 0,
            open_orders_max: 0,
        })
    }

    /// What one `price unit x quantity unit` is worth in [`Notional`] units, if the scales can
    /// be brought to that unit exactly and the multiplier fits in an `i64`.
    pub fn notional_multiplier(&self) -> Option<i64> {
        let (p, q) = (self.price_scale, self.qty_scale);
        let exp = NOTIONAL_EXP.checked_sub(p.exp as u32 + q.exp as u32)?;
        let m = (p.mantissa as i128)
            .checked_mul(q.mantissa as i128)?
            .checked_mul(10i128.checked_pow(exp)?)?;
        i64::try_from(m).ok().filter(|&m| m > 0)
    }
}

/// Every limit of one risk set, replaced whole (`Copy`, fixed size, so that it travels whole
/// through [`params_mailbox`](crate::strategy::params_mailbox)).
///
/// `instruments[id]` holds the limits of the instrument whose `instrument_id` is `id` (its index
/// in the daemon's instrument table); `None`: orders for it are refused (unknown instrument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskLimits {
    pub instruments: [Option<InstrumentLimits>; RISK_INSTRUMENTS_MAX],
    /// Most open orders in all instruments (`1..=OPEN_ORDERS_MAX`).
    pub open_orders_max: u32,
    /// Largest sum over instruments of the worst-case |position| at the reference price.
    pub gross_exposure_max: Notional,
    /// Largest worst-case net position value, long or short, at reference prices.
    pub net_exposure_max: Notional,
    /// Largest loss (realised + marked to the reference prices), a positive amount.
    pub loss_max: Notional,
    /// The state a loss beyond `loss_max` moves trading to: `ReduceOnly` or `Halted`.
    pub loss_state: TradingState,
    /// New orders and replaces.
    pub order_rate: RateLimit,
    /// Every request: new, replace, cancel, mass cancel.
    pub message_rate: RateLimit,
    /// Repeated-execution throttle: more fills than this in the window halt trading.
    pub fill_rate: RateLimit,
    /// A new order identical (instrument, side, price, quantity) to one sent less than this
    /// long ago is a duplicate (`> 0`).
    pub duplicate_window_ns: u64,
}

impl Default for RiskLimits {
    /// No instruments and every limit unset: not valid until filled.
    fn default() -> RiskLimits {
        RiskLimits {
            instruments: [None; RISK_INSTRUMENTS_MAX],
            open_orders_max: 0,
            gross_exposure_max: 0,
            net_exposure_max: 0,
            loss_max: 0,
            loss_state: TradingState::Halted,
            order_rate: RateLimit::default(),
            message_rate: RateLimit::default(),
            fill_rate: RateLimit::default(),
            duplicate_window_ns: 0,
        }
    }
}

impl RiskLimits {
    /// Limits with the filters of `instruments` (each at its `id`) filled from their
    /// `exchangeInfo` data; every risk limit unset (cold path). Errors name the instrument and
    /// the filter: an id beyond `RISK_INSTRUMENTS_MAX`, an id twice, a filter that is not a
    /// whole number of units, scales that cannot be normalised, another quote asset.
    pub fn for_instruments(instruments: &[&Instrument]) -> Result<RiskLimits, RiskLimitsError> {
        let mut limits = RiskLimits::default();
        for instrument in instruments {
            let key = |field: &str| format!("instruments[{}].{field}", instrument.symbol);
            let id = instrument.id as usize;
            if id >= RISK_INSTRUMENTS_MAX {
                return Err(RiskLimitsError::new(
                    key("id"),
                    LimitProblem::OutOfRange {
                        value: id as i128,
                        min: 0,
                        max: RISK_INSTRUMENTS_MAX as i128 - 1,
                    },
                ));
            }
            if let Some(other) = &limits.instruments[id] {
                return Err(RiskLimitsError::new(
                    key("id"),
                    LimitProblem::Invalid(format!("{id} is also {}'s", other.symbol)),
                ));
            }
            let each = InstrumentLimits::from_instrument(instrument)?;
            check_scales(&each)?;
            if let Some(first) = limits.instruments.iter().flatten().next()
                && first.quote_asset != each.quote_asset
            {
                return Err(quote_mismatch(first, &each));
            }
            limits.instruments[id] = Some(each);
        }
        Ok(limits)
    }

    /// The limits of the instrument called `symbol` (any case).
    pub fn instrument_mut(&mut self, symbol: &str) -> Option<&mut InstrumentLimits> {
        let wanted = Symbol::from_ascii(symbol.as_bytes())?;
        self.instruments
            .iter_mut()
            .flatten()
            .find(|i| i.symbol == wanted)
    }

    /// Every configured instrument's limits, by id.
    pub fn instruments_mut(&mut self) -> impl Iterator<Item = &mut InstrumentLimits> {
        self.instruments.iter_mut().flatten()
    }

    /// Checks every limit; the error names the first bad key and why (cold path).
    pub fn validate(&self) -> Result<(), RiskLimitsError> {
        let mut first: Option<&InstrumentLimits> = None;
        let open_orders_max = self.open_orders_max;
        range(
            || "open_orders_max".into(),
            open_orders_max as i128,
            1,
            OPEN_ORDERS_MAX as i128,
        )?;
        for each in self.instruments.iter().flatten() {
            validate_instrument(each, open_orders_max)?;
            match first {
                None => first = Some(each),
                Some(first) if first.quote_asset != each.quote_asset => {
                    return Err(quote_mismatch(first, each));
                }
                Some(_) => {}
            }
        }
        if first.is_none() {
            return Err(RiskLimitsError::new(
                "instruments".into(),
                LimitProblem::Invalid("no instrument".into()),
            ));
        }
        positive(|| "gross_exposure_max".into(), self.gross_exposure_max)?;
        positive(|| "net_exposure_max".into(), self.net_exposure_max)?;
        positive(|| "loss_max".into(), self.loss_max)?;
        if self.loss_state == TradingState::Active {
            return Err(RiskLimitsError::new(
                "loss_state".into(),
                LimitProblem::Invalid("must be ReduceOnly or Halted".into()),
            ));
        }
        for (name, rate) in [
            ("order_rate", self.order_rate),
            ("message_rate", self.message_rate),
            ("fill_rate", self.fill_rate),
        ] {
            range(
                || format!("{name}.count_max"),
                rate.count_max as i128,
                1,
                RATE_WINDOW_MAX as i128,
            )?;
            positive(|| format!("{name}.window_ns"), rate.window_ns as i128)?;
        }
        positive(
            || "duplicate_window_ns".into(),
            self.duplicate_window_ns as i128,
        )?;
        // Exact duplicate detection: every new order of one duplicate window must still be
        // remembered (see `RECENT_ORDERS_MAX`).
        let windows = self.duplicate_window_ns.div_ceil(self.order_rate.window_ns) as i128;
        let orders_in_window = windows.saturating_mul(self.order_rate.count_max as i128);
        if orders_in_window > RECENT_ORDERS_MAX as i128 {
            return Err(RiskLimitsError::new(
                "duplicate_window_ns".into(),
                LimitProblem::Invalid(format!(
                    "up to {orders_in_window} new orders fit in {} ns at the order rate, more \
                     than the {RECENT_ORDERS_MAX} remembered: shorten the window or the rate",
                    self.duplicate_window_ns
                )),
            ));
        }
        Ok(())
    }
}

fn quote_mismatch(first: &InstrumentLimits, other: &InstrumentLimits) -> RiskLimitsError {
    RiskLimitsError::new(
        format!("instruments[{}].quote_asset", other.symbol),
        LimitProblem::Invalid(format!(
            "{} differs from {}'s {}: exposures of one risk set add up in one quote asset",
            other.quote_asset, first.symbol, first.quote_asset
        )),
    )
}

fn check_scales(each: &InstrumentLimits) -> Result<i64, RiskLimitsError> {
    each.notional_multiplier().ok_or_else(|| {
        RiskLimitsError::new(
            format!("instruments[{}].price_scale", each.symbol),
            LimitProblem::Invalid(format!(
                "a price unit of {} times a quantity unit of {} cannot be expressed in whole \
                 10^-{NOTIONAL_EXP} quote units",
                each.price_scale.unit(),
                each.qty_scale.unit()
            )),
        )
    })
}

fn validate_instrument(
    each: &InstrumentLimits,
    open_orders_max: u32,
) -> Result<(), RiskLimitsError> {
    let key = |field: &'static str| move || format!("instruments[{}].{field}", each.symbol);
    check_scales(each)?;
    positive(key("tick_units"), each.tick_units as i128)?;
    positive(key("lot_units"), each.lot_units as i128)?;
    for (min_key, min, max_key, max) in [
        (
            "price_min_units",
            each.price_min_units,
            "price_max_units",
            each.price_max_units,
        ),
        (
            "qty_min_units",
            each.qty_min_units,
            "qty_max_units",
            each.qty_max_units,
        ),
    ] {
        range(key(min_key), min as i128, 0, i64::MAX as i128)?;
        range(key(max_key), max as i128, 0, i64::MAX as i128)?;
        if max != 0 && min > max {
            return Err(RiskLimitsError::new(
                key(max_key)(),
                LimitProblem::Invalid(format!("{max} is below the minimum {min}")),
            ));
        }
    }
    range(key("notional_min"), each.notional_min, 0, i128::MAX)?;
    range(
        key("collar_bps"),
        each.collar_bps as i128,
        1,
        COLLAR_BPS_MAX as i128,
    )?;
    let qty_max = QTY_UNITS_MAX as i128;
    range(
        key("order_qty_max_units"),
        each.order_qty_max_units as i128,
        1,
        qty_max,
    )?;
    positive(key("order_notional_max"), each.order_notional_max)?;
    range(
        key("position_max_units"),
        each.position_max_units as i128,
        1,
        qty_max,
    )?;
    range(
        key("open_orders_max"),
        each.open_orders_max as i128,
        1,
        open_orders_max as i128,
    )?;
    Ok(())
}

// Keys are built only for an error: validation of good limits allocates nothing, so the risk
// agent may run it between two orders.
fn positive(key: impl FnOnce() -> String, value: i128) -> Result<(), RiskLimitsError> {
    range(key, value, 1, i128::MAX)
}

fn range(
    key: impl FnOnce() -> String,
    value: i128,
    min: i128,
    max: i128,
) -> Result<(), RiskLimitsError> {
    if value == 0 && min > 0 {
        return Err(RiskLimitsError::new(key(), LimitProblem::NotSet));
    }
    if value < min || value > max {
        return Err(RiskLimitsError::new(
            key(),
            LimitProblem::OutOfRange { value, min, max },
        ));
    }
    Ok(())
}

/// Why a risk limit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitProblem {
    #[error("not set (0 is not a limit)")]
    NotSet,
    #[error("{value} is outside {min}..={max}")]
    OutOfRange { value: i128, min: i128, max: i128 },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "changed from {was} to {now}: an instrument's identity and scales are fixed while the engine runs"
    )]
    Changed { was: String, now: String },
}

/// A refused set of risk limits: the first bad key (`instruments[BTCUSDT].collar_bps`,
/// `order_rate.count_max`, ...) and why. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("risk limit {key}: {problem}")]
pub struct RiskLimitsError {
    pub key: String,
    pub problem: LimitProblem,
}

impl RiskLimitsError {
    pub(crate) fn new(key: String, problem: LimitProblem) -> RiskLimitsError {
        RiskLimitsError { key, problem }
    }
}
