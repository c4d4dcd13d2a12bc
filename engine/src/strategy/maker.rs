//! `maker`: quotes both sides of one instrument around the microprice, skewed against its
//! inventory, and cancel/replaces a quote only when its target moves more than a threshold (so
//! that it keeps queue priority through small moves and stays inside message-rate limits).

use levibot_shm::records::{ExecutionReport, exec_type, side, time_in_force};

use super::{MarketView, OrderSink, Strategy};
use crate::book::BookState;

/// The maker's parameters, in the instrument's price and quantity units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MakerParams {
    /// Distance from the fair price to each quote.
    pub half_spread_units: i64,
    /// Quantity of each quote.
    pub quote_qty: i64,
    /// The fair price moves against inventory by this much per unit of quantity held.
    pub skew_units_per_qty: f64,
    /// A quote is replaced when its target moves by more than this.
    pub requote_threshold_units: i64,
    /// No quote that would take |inventory| beyond this.
    pub inventory_max: i64,
    /// Quotes are post-only: the venue refuses one that would take liquidity (a quote that
    /// crossed the book while it was on its way) rather than fill it as a taker.
    pub post_only: bool,
}

/// A parameter out of range, named.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("strategy parameter {name} = {value}: {reason}")]
pub struct StrategyParamsError {
    pub name: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl MakerParams {
    /// The flags of its quotes.
    pub fn order_flags(&self) -> u16 {
        if self.post_only {
            levibot_shm::records::order_flag::POST_ONLY
        } else {
            0
        }
    }

    pub fn validate(&self) -> Result<(), StrategyParamsError> {
        let positive = |name: &'static str, value: i64| {
            (value > 0).then_some(()).ok_or(StrategyParamsError {
                name,
                value: value.to_string(),
                reason: "must be positive",
            })
        };
        positive("half_spread_units", self.half_spread_units)?;
        positive("quote_qty", self.quote_qty)?;
        positive("inventory_max", self.inventory_max)?;
        if self.requote_threshold_units < 0 {
            return Err(StrategyParamsError {
                name: "requote_threshold_units",
                value: self.requote_threshold_units.to_string(),
                reason: "must not be negative",
            });
        }
        if !(self.skew_units_per_qty.is_finite() && self.skew_units_per_qty >= 0.0) {
            return Err(StrategyParamsError {
                name: "skew_units_per_qty",
                value: self.skew_units_per_qty.to_string(),
                reason: "must be a finite number >= 0",
            });
        }
        Ok(())
    }
}

/// One side's working quote.
///
/// One request at a time per side: while the last one is unanswered (`pending`), the quote is
/// left alone, so a replace or cancel never names an order the venue or risk may not have taken.
///
/// A refused request is not sent again at the same price until something changes: the target
/// moves, or a report changes what the maker has working (`refused_px`). Without that rule a
/// refusal that holds (risk's self-trade check while the other side's replace is in flight, a
/// limit reached) made the maker ask again on every market event: a storm of refusals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Quote {
    client_order_id: Option<u64>,
    px: i64,
    pending: bool,
    /// While a replace is pending: the order it replaces and its price, still working until
    /// the replace is acknowledged (and working again if the replace is refused).
    replaced: Option<(u64, i64)>,
    /// The price the last request on this side was refused at, until the target moves or
    /// another report comes.
    refused_px: Option<i64>,
}

/// The maker for one instrument.
#[derive(Debug)]
pub struct Maker {
    instrument_id: u32,
    params: MakerParams,
    bid: Quote,
    ask: Quote,
    /// Filled quantity held: bought minus sold.
    inventory: i64,
}

impl Maker {
    pub fn new(instrument_id: u32, params: MakerParams) -> Result<Self, StrategyParamsError> {
        params.validate()?;
        Ok(Maker {
            instrument_id,
            params,
            bid: Quote::default(),
            ask: Quote::default(),
            inventory: 0,
        })
    }

    pub fn inventory(&self) -> i64 {
        self.inventory
    }

    /// The working quotes' prices (bid, ask), if any.
    pub fn quotes(&self) -> (Option<i64>, Option<i64>) {
        let px = |q: &Quote| q.client_order_id.map(|_| q.px);
        (px(&self.bid), px(&self.ask))
    }

    /// Places, replaces or cancels one side's quote towards `target` (`None`: no quote).
    fn steer(
        quote: &mut Quote,
        instrument_id: u32,
        order_side: u8,
        target: Option<i64>,
        params: &MakerParams,
        out: &mut OrderSink,
    ) {
        if quote.pending {
            return;
        }
        if quote.refused_px.is_some() && quote.refused_px == target {
            return;
        }
        quote.refused_px = None;
        match (quote.client_order_id, target) {
            (None, Some(px)) => {
                if let Some(id) = out.limit_flagged(
                    instrument_id,
                    order_side,
                    px,
                    params.quote_qty,
                    time_in_force::GTC,
                    params.order_flags(),
                ) {
                    *quote = Quote {
                        client_order_id: Some(id),
                        px,
                        pending: true,
                        replaced: None,
                        refused_px: None,
                    };
                }
            }
            (Some(orig), Some(px)) if (px - quote.px).abs() > params.requote_threshold_units => {
                if let Some(id) = out.replace_flagged(
                    instrument_id,
                    order_side,
                    orig,
                    px,
                    params.quote_qty,
                    params.order_flags(),
                ) {
                    *quote = Quote {
                        client_order_id: Some(id),
                        px,
                        pending: true,
                        replaced: Some((orig, quote.px)),
                        refused_px: None,
                    };
                }
            }
            (Some(orig), None) => {
                // Forget the quote only once its cancel is on its way (the sink may be full).
                let cancel = out.cancel(instrument_id, order_side, orig);
                if cancel.is_some() {
                    *quote = Quote::default();
                }
            }
            _ => {}
        }
    }
}

impl Strategy for Maker {
    type Params = MakerParams;

    fn name(&self) -> &str {
        "maker"
    }

    /// A restarted maker's skew and `inventory_max` count what it already holds.
    fn start_from_position(&mut self, position: i64) {
        self.inventory = position;
    }

    fn on_market(&mut self, view: &MarketView<'_>, out: &mut OrderSink) {
        if view.instrument_id != self.instrument_id {
            return;
        }
        let p = self.params;
        let (Some(micro), Some(best_bid), Some(best_ask)) = (
            view.features.microprice(),
            view.book.best_bid(),
            view.book.best_ask(),
        ) else {
            return;
        };
        let (bid_target, ask_target) = if view.book.state() == BookState::Synced {
            let fair = micro - self.inventory as f64 * p.skew_units_per_qty;
            let grid = view.grid;
            // Never cross the book: a maker's quote rests.
            let bid = grid
                .floor_px((fair - p.half_spread_units as f64) as i64)
                .min(best_ask.px - grid.tick_units);
            let ask = grid
                .ceil_px((fair + p.half_spread_units as f64) as i64)
                .max(best_bid.px + grid.tick_units);
            (
                (self.inventory + p.quote_qty <= p.inventory_max && bid > 0).then_some(bid),
                (self.inventory - p.quote_qty >= -p.inventory_max).then_some(ask),
            )
        } else {
            (None, None) // the book is not the venue's: pull the quotes
        };
        let id = self.instrument_id;
        Self::steer(&mut self.bid, id, side::BUY, bid_target, &p, out);
        Self::steer(&mut self.ask, id, side::SELL, ask_target, &p, out);
    }

    fn on_execution(&mut self, report: &ExecutionReport, _out: &mut OrderSink) {
        if report.instrument_id != self.instrument_id {
            return;
        }
        let id = report.client_order_id;
        if report.exec_type != exec_type::REJECTED {
            // What the maker has working changed: a refused price may pass now.
            self.bid.refused_px = None;
            self.ask.refused_px = None;
        }
        let is = |q: &Quote| q.client_order_id == Some(id);
        let quote = if is(&self.bid) {
            &mut self.bid
        } else if is(&self.ask) {
            &mut self.ask
        } else {
            // A fill of an order we no longer track (replaced meanwhile) still moves inventory.
            if report.exec_type == exec_type::TRADE {
                self.inventory += signed(report.side, report.last_qty);
            }
            // The order a pending replace would restore is gone: nothing to restore.
            let gone = (report.exec_type == exec_type::TRADE && report.leaves_qty == 0)
                || matches!(report.exec_type, exec_type::CANCELED | exec_type::EXPIRED);
            for q in [&mut self.bid, &mut self.ask] {
                if gone && q.replaced.is_some_and(|(orig, _)| orig == id) {
                    q.replaced = None;
                }
            }
            return;
        };
        match report.exec_type {
            exec_type::NEW | exec_type::REPLACED => {
                quote.pending = false;
                quote.replaced = None;
            }
            exec_type::TRADE => {
                self.inventory += signed(report.side, report.last_qty);
                quote.pending = false;
                quote.replaced = None;
                if report.leaves_qty == 0 {
                    *quote = Quote::default();
                }
            }
            exec_type::REJECTED => {
                // A refused replace leaves the original working; a refused order is gone.
                let refused_px = Some(quote.px);
                *quote = match quote.replaced {
                    Some((orig, px)) => Quote {
                        client_order_id: Some(orig),
                        px,
                        pending: false,
                        replaced: None,
                        refused_px,
                    },
                    None => Quote {
                        refused_px,
                        ..Quote::default()
                    },
                };
            }
            exec_type::CANCELED | exec_type::EXPIRED => {
                *quote = Quote::default();
            }
            _ => {}
        }
    }

    fn params(&self) -> MakerParams {
        self.params
    }

    fn set_params(&mut self, params: MakerParams) {
        self.params = params;
    }
}

/// Quantity signed by side: bought is positive.
pub(crate) fn signed(order_side: u8, qty: i64) -> i64 {
    if order_side == side::BUY { qty } else { -qty }
}
