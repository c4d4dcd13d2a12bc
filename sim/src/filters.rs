//! A venue's exchange filters (Binance's PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL) in an
//! instrument's integer units, and why a venue refuses an order. The simulated venue's
//! matching engine and the backtest's venue both check orders with these, so the two venues
//! keep one set of rules.

use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::Instrument;
use levibot_shm::records::{ord_type, side, time_in_force};
use rust_decimal::Decimal;

/// Why the venue refused an order (the text goes into FIX Text(58); the code into
/// OrdRejReason(103) where FIX has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    UnknownInstrument,
    /// Side, order type or time in force the venue does not take.
    Unsupported,
    PriceOffTick,
    QtyOffLot,
    QtyOutOfRange,
    PriceOutOfRange,
    NotionalTooSmall,
    /// The client order id is already working.
    DuplicateClientOrderId,
    /// Cancel or replace of an order that is not working.
    UnknownOrder,
    /// A fill-or-kill order that could not fill at once, entirely.
    WouldNotFill,
    /// A post-only order that would have taken liquidity on arrival (Binance's LIMIT_MAKER
    /// "would immediately match and take").
    WouldTakeLiquidity,
    /// The venue refused it for its own reasons (overload, a test fault): nothing rests.
    Refused,
}

impl RejectReason {
    /// FIX OrdRejReason (103) / CxlRejReason (102): 0 broker option, 1 unknown symbol, 5 unknown
    /// order, 6 duplicate order, 99 other.
    pub fn fix_code(self) -> u32 {
        match self {
            RejectReason::UnknownInstrument => 1,
            RejectReason::UnknownOrder => 5,
            RejectReason::DuplicateClientOrderId => 6,
            RejectReason::Unsupported => 0,
            _ => 99,
        }
    }

    /// A short stable name (`price_off_tick`), for counters, summaries and tables.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::UnknownInstrument => "unknown_instrument",
            RejectReason::Unsupported => "unsupported",
            RejectReason::PriceOffTick => "price_off_tick",
            RejectReason::QtyOffLot => "qty_off_lot",
            RejectReason::QtyOutOfRange => "qty_out_of_range",
            RejectReason::PriceOutOfRange => "price_out_of_range",
            RejectReason::NotionalTooSmall => "notional_too_small",
            RejectReason::DuplicateClientOrderId => "duplicate_client_order_id",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::WouldNotFill => "fill_or_kill_not_filled",
            RejectReason::WouldTakeLiquidity => "post_only_would_take",
            RejectReason::Refused => "refused",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            RejectReason::UnknownInstrument => "unknown instrument",
            RejectReason::Unsupported => "unsupported side, order type or time in force",
            RejectReason::PriceOffTick => "price is not a multiple of the tick size",
            RejectReason::QtyOffLot => "quantity is not a multiple of the step size",
            RejectReason::QtyOutOfRange => "quantity outside the LOT_SIZE filter",
            RejectReason::PriceOutOfRange => "price outside the PRICE_FILTER",
            RejectReason::NotionalTooSmall => "notional below the MIN_NOTIONAL filter",
            RejectReason::DuplicateClientOrderId => "duplicate client order id",
            RejectReason::UnknownOrder => "unknown order",
            RejectReason::WouldNotFill => "fill-or-kill order could not fill",
            RejectReason::WouldTakeLiquidity => "post-only order would take liquidity",
            RejectReason::Refused => "the venue refused the order; try again",
        }
    }
}

/// Why a venue's filters could not be made from an instrument.
#[derive(Debug, thiserror::Error)]
#[error("instrument {symbol}: {reason}")]
pub struct FilterError {
    pub symbol: String,
    pub reason: String,
}

/// The exchange filters of one instrument, in its units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filters {
    pub tick_units: i64,
    pub lot_units: i64,
    pub qty_min: i64,
    /// 0: none.
    pub qty_max: i64,
    pub px_min: i64,
    /// 0: none.
    pub px_max: i64,
    /// `px x qty` in price units x quantity units must reach this (0: none).
    pub notional_min: i128,
}

fn units(value: Decimal, scale: Scale, symbol: &str, what: &str) -> Result<i64, FilterError> {
    scale.from_decimal_value(value).map_err(|e| FilterError {
        symbol: symbol.to_owned(),
        reason: format!("{what} {value}: {e}"),
    })
}

impl Filters {
    /// The filters of `instrument`, in its units; a filter its units cannot hold exactly is an
    /// error.
    pub fn of(instrument: &Instrument) -> Result<Filters, FilterError> {
        let symbol = instrument.symbol.as_str();
        let (ps, qs) = (instrument.price_scale, instrument.qty_scale);
        // min notional in price units x quantity units: value / (price unit x qty unit).
        let unit = ps.unit() * qs.unit();
        let notional = instrument.min_notional / unit;
        if notional.fract() != Decimal::ZERO {
            return Err(FilterError {
                symbol: symbol.to_owned(),
                reason: format!(
                    "min notional {} in units of {unit}",
                    instrument.min_notional
                ),
            });
        }
        Ok(Filters {
            tick_units: instrument.tick_units,
            lot_units: instrument.lot_units,
            qty_min: units(instrument.min_qty, qs, symbol, "min qty")?,
            qty_max: units(instrument.max_qty, qs, symbol, "max qty")?,
            px_min: units(instrument.min_price, ps, symbol, "min price")?,
            px_max: units(instrument.max_price, ps, symbol, "max price")?,
            notional_min: notional.mantissa() / 10i128.pow(notional.scale()),
        })
    }

    /// Checks a new order's side, type, time in force, quantity and (limit orders) price and
    /// notional, in that order; the first filter it breaks is the reason.
    pub fn check(
        &self,
        order_side: u8,
        order_type: u8,
        tif: u8,
        px: i64,
        qty: i64,
    ) -> Result<(), RejectReason> {
        let supported_side = matches!(order_side, side::BUY | side::SELL);
        let supported_type = match order_type {
            ord_type::LIMIT => matches!(
                tif,
                time_in_force::GTC | time_in_force::IOC | time_in_force::FOK
            ),
            ord_type::MARKET => true,
            _ => false,
        };
        if !supported_side || !supported_type {
            return Err(RejectReason::Unsupported);
        }
        if qty <= 0 || qty % self.lot_units != 0 {
            return Err(RejectReason::QtyOffLot);
        }
        if qty < self.qty_min || (self.qty_max > 0 && qty > self.qty_max) {
            return Err(RejectReason::QtyOutOfRange);
        }
        if order_type == ord_type::LIMIT {
            if px <= 0 || px % self.tick_units != 0 {
                return Err(RejectReason::PriceOffTick);
            }
            if px < self.px_min || (self.px_max > 0 && px > self.px_max) {
                return Err(RejectReason::PriceOutOfRange);
            }
            if (px as i128) * (qty as i128) < self.notional_min {
                return Err(RejectReason::NotionalTooSmall);
            }
        }
        Ok(())
    }
}
