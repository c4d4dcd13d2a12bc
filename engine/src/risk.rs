//! Pre-trade risk: every order request a strategy emits passes every check here before it
//! reaches the gateway, in tens of nanoseconds, with no allocation, lock, syscall or formatting.
//!
//! [`RiskEngine`] is single-threaded: the pipeline's risk agent owns it, calls
//! [`check`](RiskEngine::check) for every request, [`on_execution`](RiskEngine::on_execution)
//! for every execution report and [`on_market`](RiskEngine::on_market) when a top of book
//! changes, and journals every [`RiskReject`] it gets back (the engine counts them by check,
//! [`rejects`](RiskEngine::rejects), but journals nothing). Limits are one `Copy` value,
//! [`RiskLimits`], validated and replaced whole ([`replace_limits`](RiskEngine::replace_limits));
//! from another thread they travel through [`params_mailbox`](crate::strategy::params_mailbox)
//! and the agent applies them between two orders ([`RiskEngine::apply_pending_limits`]).
//!
//! # The checks, in the order they run
//!
//! For a new order (`order_kind::NEW`): the request's fields ([`RiskCheck::InvalidOrder`]), the
//! instrument, the client order id, the trading state (halted), the message and order rates,
//! identical recent order, the instrument filters (lot, min/max qty, tick, min/max price), the
//! reference price, the price collar, min notional, max order qty and notional, self-trade,
//! open orders, and the worst-case checks (reduce-only, position, gross and net exposure). A
//! replace runs the same checks on its new price and quantity, with the exposures counting the
//! replacement instead of the original (and no open-order count or identical-order check: it
//! opens no order). A cancel needs an order risk knows and a free slot in the message rate; it
//! is allowed in every trading state. A mass cancel always passes (it is the kill switch's
//! tool) and counts in the message rate.
//!
//! The first failing check is the reject's code; a request that passes is recorded: rate
//! windows, recent orders, open orders and their worst-case quantities. Only requests that pass
//! count in the rate windows: the throttles bound what reaches the venue.
//!
//! A market order has no price to check: its notional is taken at the reference price, and
//! self-trade prevention sees it as crossing every resting order of ours on the other side.
//! A replace's quantity is the order's new total (FIX OrderQty), so what it leaves open is that
//! minus what has filled.
//!
//! # Units
//!
//! Prices and quantities are the instrument's integer units. Notionals (exposure, PnL, min
//! notional, max order notional) are [`Notional`]s: `i128` in 10^-18 quote-asset units, one unit
//! for all the instruments of a risk set, which share their quote asset (see [`limits`]).
//! A reject journals notionals in 10^-[`REJECT_NOTIONAL_EXP`] quote units to fit its `i64`s.
//!
//! # Worst case
//!
//! For each instrument, `worst_long = position + open buy qty` and `worst_short = position -
//! open sell qty`: where the position ends up if every open buy (or every open sell) fills. An
//! order with a replace pending counts the larger of its working quantity and what the
//! replacement would leave open, whichever the venue ends up with. The position limit bounds `max(worst_long, -worst_short)`;
//! gross exposure is the sum over instruments of that times the reference price; net exposure
//! is the larger of `sum(worst_long x ref)` and `-sum(worst_short x ref)`. Each instrument's
//! three contributions are kept with the totals, so a check is O(1): total - old contribution +
//! new contribution.
//!
//! # Execution reports
//!
//! `NEW` acknowledges, `TRADE` fills (position, cost, realised PnL, leaves; the order leaves the
//! table when nothing is left), `CANCELED`/`EXPIRED` remove the order, `REJECTED` removes it (or,
//! for the id of a pending replace or cancel, drops that request), `REPLACED` makes the pending
//! replace the working order. A refused replace or cancel (FIX OrderCancelReject) must reach
//! `on_execution` as `REJECTED` with the refused request's client order id. Reports for unknown
//! ids, of another instrument, with a zero or negative fill, or of an unknown exec type are
//! ignored and counted ([`RiskEngine::ignored_reports`]). `ORDER_STATUS` reports reconcile
//! with the venue during a status round (see `status.rs`,
//! [`RiskEngine::begin_status_round`]) and are ignored outside one.
//!
//! # Restoring after a restart
//!
//! [`RiskEngine::restore_order`] records an order an earlier run sent exactly as `check`
//! recorded it when it passed (the same steps; no check, no rate window, no recent order), and
//! the earlier run's reports replay through `on_execution` (see `restore.rs`):
//! `levibot_daemon::recovery` replays the journal through them.
//! [`restore_next_client_order_id`](RiskEngine::restore_next_client_order_id) raises a
//! strategy's client-order-id mark; [`set_trading_state`](RiskEngine::set_trading_state) sets
//! the state.
//!
//! # Client order ids
//!
//! Every request carries a new client order id, increasing per `strategy_id` (the strategy's
//! `OrderSink` numbers them). An id below the highest seen for its strategy, or equal to the
//! id of an open order (of any strategy), is a duplicate. The ids of open orders must be
//! unique across strategies: execution reports carry only the id.
//!
//! # Files
//!
//! This file holds the engine's types, its construction, its limits and its read-only views;
//! the checks are in `check.rs`, the execution reports in `execution.rs`, the per-instrument
//! accounting (exposures, PnL, marks, the loss trip) in `exposure.rs`, and the open-order
//! table, rate windows, grids, restoring and status rounds in the other files of `risk/`.
//!
//! [`RiskReject`]: levibot_shm::records::RiskReject

mod check;
mod execution;
mod exposure;
mod grid;
pub mod limits;
mod orders;
mod restore;
mod status;
mod window;

use levibot_shm::records::ord_type;

use crate::strategy::ParamsReceiver;
use execution::Role;
use exposure::{InstrumentRisk, Ledger};
pub use limits::{
    COLLAR_BPS_MAX, INSTRUMENT_NOTIONAL_MAX, InstrumentLimits, LimitProblem, NOTIONAL_EXP,
    NOTIONAL_ONE, Notional, QTY_UNITS_MAX, RateLimit, RiskLimits, RiskLimitsError,
    notional_from_decimal_parts, quote,
};
use orders::OpenOrders;
pub use orders::{OPEN_ORDERS_MAX, REPLACES_PENDING_MAX};
pub use restore::{
    EngineState, LedgerState, OrderState, RESTORED_WORST_MAX, ReplaceState, RestoreError,
    RestoreProblem, StateProblem, TripState,
};
pub use window::{RATE_WINDOW_MAX, RECENT_ORDERS_MAX};
use window::{RateWindow, RecentOrders};

/// Most instruments one risk engine covers (instrument ids `0..RISK_INSTRUMENTS_MAX`).
pub const RISK_INSTRUMENTS_MAX: usize = 64;
/// Strategies whose client order ids are tracked: the whole `strategy_id` (`u16`) range.
pub const RISK_STRATEGIES_MAX: usize = 1 << 16;
/// Notional limits and values in a [`RiskReject`] are in 10^-`REJECT_NOTIONAL_EXP` quote units
/// (a value rounded away from its limit, the limit towards it, so a journaled value is always
/// beyond its journaled limit).
///
/// [`RiskReject`]: levibot_shm::records::RiskReject
pub const REJECT_NOTIONAL_EXP: u32 = 8;
/// Basis points in 100%.
const BPS_ONE: i64 = 10_000;

/// Self-trade prevention sees an open market buy as a buy at this price (it crosses any sell)
/// and a market sell at [`MARKET_SELL_PX`]; each is one away from the "no order on that side"
/// sentinel so that a market order alone does not cross an empty side.
const MARKET_BUY_PX: i64 = i64::MAX - 1;
const MARKET_SELL_PX: i64 = i64::MIN + 1;
/// Best resting prices when a side has no order.
const NO_BUY_PX: i64 = i64::MIN;
const NO_SELL_PX: i64 = i64::MAX;

/// Which field of a request is invalid: the `value` of an [`RiskCheck::InvalidOrder`] reject.
pub mod invalid_field {
    /// `kind` is not one of `order_kind`.
    pub const KIND: i64 = 1;
    /// `side` is not buy or sell.
    pub const SIDE: i64 = 2;
    /// `ord_type` is not market or limit (or a replace to a market order).
    pub const ORD_TYPE: i64 = 3;
    /// `time_in_force` is not GTC, IOC or FOK.
    pub const TIME_IN_FORCE: i64 = 4;
    /// `qty <= 0`.
    pub const QTY: i64 = 5;
    /// A limit order with `px <= 0`.
    pub const PX: i64 = 6;
    /// A replace whose target has another instrument, side, or is a market order.
    pub const TARGET: i64 = 7;
}

/// The risk checks' journaled codes and names, and the trading states, are the journal's
/// ABI: they live in `shm` (`levibot_shm::codes`), where every reader finds them.
pub use levibot_shm::codes::{RiskCheck, TradingState};

/// Worst-case exposures in [`Notional`] units (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Sum over instruments of `max(worst_long, -worst_short) x reference price`.
    pub gross: Notional,
    /// `sum(worst_long x reference price)`: the longest the book can get.
    pub net_long: Notional,
    /// `sum(worst_short x reference price)`: the shortest (negative when short).
    pub net_short: Notional,
}

impl Exposure {
    /// The net exposure the limit bounds: `max(net_long, -net_short)`.
    #[inline]
    pub fn net(&self) -> Notional {
        self.net_long.max(-self.net_short)
    }
}

/// One open order as risk sees it (diagnostics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrderInfo {
    /// The id of the working order (a replace confirmed by the venue changes it).
    pub client_order_id: u64,
    pub instrument_id: u32,
    pub side: u8,
    pub ord_type: u8,
    /// The working price (0 for a market order).
    pub px: i64,
    pub leaves_qty: i64,
    /// Filled so far.
    pub cum_qty: i64,
    /// What the worst-case quantities count for it.
    pub counted_qty: i64,
    /// Replaces awaiting the venue.
    pub replaces_pending: usize,
    /// A cancel awaiting the venue.
    pub cancel_pending: bool,
    pub acked: bool,
}

/// Why trading was moved towards `Halted` by the engine itself: reported on the next order the
/// state refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trip {
    check: RiskCheck,
    limit: i64,
    value: i64,
}

/// Global limits the hot path reads, copied out of [`RiskLimits`].
#[derive(Clone, Copy, Debug, Default)]
struct Globals {
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

/// See the module doc.
pub struct RiskEngine {
    state: TradingState,
    trip: Option<Trip>,
    globals: Globals,
    totals: Exposure,
    instruments: Box<[InstrumentRisk; RISK_INSTRUMENTS_MAX]>,
    orders: OpenOrders,
    /// Per strategy: the lowest client order id not yet seen.
    next_client_order_id: Box<[u64]>,
    order_window: RateWindow,
    message_window: RateWindow,
    fill_window: RateWindow,
    recent: RecentOrders,
    ledgers: Box<[Ledger; RISK_INSTRUMENTS_MAX]>,
    pnl_total: Notional,
    rejects: [u64; RiskCheck::COUNT],
    ignored_reports: u64,
    limits: Box<RiskLimits>,
    status: status::StatusRounds,
}

impl RiskEngine {
    /// An engine with `limits` (validated); allocates every table now (cold path).
    pub fn new(limits: RiskLimits) -> Result<RiskEngine, RiskLimitsError> {
        limits.validate()?;
        let mut next_client_order_id = vec![0u64; RISK_STRATEGIES_MAX].into_boxed_slice();
        // Touch every page now: a large zeroed allocation is mapped lazily, and the first
        // order of a strategy would otherwise take a page fault on the hot path.
        for id in next_client_order_id.iter_mut() {
            *id = std::hint::black_box(0);
        }
        let mut engine = RiskEngine {
            state: TradingState::Active,
            trip: None,
            globals: Globals::default(),
            totals: Exposure::default(),
            instruments: Box::new([InstrumentRisk::EMPTY; RISK_INSTRUMENTS_MAX]),
            orders: OpenOrders::new(),
            next_client_order_id,
            order_window: RateWindow::new(),
            message_window: RateWindow::new(),
            fill_window: RateWindow::new(),
            recent: RecentOrders::new(),
            ledgers: Box::new([Ledger::EMPTY; RISK_INSTRUMENTS_MAX]),
            pnl_total: 0,
            rejects: [0; RiskCheck::COUNT],
            ignored_reports: 0,
            limits: Box::new(limits),
            status: status::StatusRounds::default(),
        };
        engine.apply_limits(&limits);
        Ok(engine)
    }

    /// Validates `limits` as a whole and swaps them in, effective from the next request; on
    /// error nothing changes. An instrument's symbol, quote asset and scales cannot change while
    /// the engine runs, and instruments cannot be removed (they may be added). Allocates nothing
    /// when the limits are valid, so the risk agent can apply it between two orders.
    pub fn replace_limits(&mut self, limits: RiskLimits) -> Result<(), RiskLimitsError> {
        limits.validate()?;
        for ((s, ledger), new) in self
            .instruments
            .iter()
            .zip(self.ledgers.iter())
            .zip(&limits.instruments)
        {
            let Some(new) = new else { continue };
            let bound = ledger.qty_bound.max(new.position_max_units) as i128;
            if s.enabled && s.ref_notional > INSTRUMENT_NOTIONAL_MAX / bound {
                return Err(RiskLimitsError {
                    key: format!("instruments[{}].position_max_units", new.symbol),
                    problem: LimitProblem::Invalid(format!(
                        "{} at the current reference price {} would be worth more than \
                         {INSTRUMENT_NOTIONAL_MAX} notional units",
                        new.position_max_units, s.ref_px
                    )),
                });
            }
        }
        for (old, new) in self.limits.instruments.iter().zip(&limits.instruments) {
            let Some(old) = old else { continue };
            let same = |new: &InstrumentLimits| {
                (new.symbol, new.quote_asset, new.price_scale, new.qty_scale)
                    == (old.symbol, old.quote_asset, old.price_scale, old.qty_scale)
            };
            match new {
                Some(new) if same(new) => {}
                _ => {
                    let was = format!(
                        "{} ({}, {} x {})",
                        old.symbol,
                        old.quote_asset,
                        old.price_scale.unit(),
                        old.qty_scale.unit()
                    );
                    let now = new.map_or("nothing".to_string(), |n| {
                        format!(
                            "{} ({}, {} x {})",
                            n.symbol,
                            n.quote_asset,
                            n.price_scale.unit(),
                            n.qty_scale.unit()
                        )
                    });
                    return Err(RiskLimitsError {
                        key: format!("instruments[{}]", old.symbol),
                        problem: LimitProblem::Changed { was, now },
                    });
                }
            }
        }
        self.apply_limits(&limits);
        Ok(())
    }

    /// Applies the newest limits waiting in `mailbox` (sent from another thread by the
    /// [`params_mailbox`](crate::strategy::params_mailbox)'s sender), if any: `None` if none
    /// waited, else what [`replace_limits`](Self::replace_limits) said. Call between orders.
    pub fn apply_pending_limits(
        &mut self,
        mailbox: &mut ParamsReceiver<RiskLimits>,
    ) -> Option<Result<(), RiskLimitsError>> {
        mailbox.latest().map(|limits| self.replace_limits(limits))
    }

    fn apply_limits(&mut self, limits: &RiskLimits) {
        *self.limits = *limits;
        self.globals = Globals {
            open_orders_max: limits.open_orders_max,
            gross_exposure_max: limits.gross_exposure_max,
            net_exposure_max: limits.net_exposure_max,
            loss_max: limits.loss_max,
            loss_state: limits.loss_state,
            order_rate: limits.order_rate,
            message_rate: limits.message_rate,
            fill_rate: limits.fill_rate,
            duplicate_window_ns: limits.duplicate_window_ns,
        };
        let each = self.instruments.iter_mut().zip(self.ledgers.iter_mut());
        for ((s, ledger), l) in each.zip(&limits.instruments) {
            match l {
                Some(l) => {
                    s.load(l);
                    ledger.raise_bound(l.position_max_units);
                }
                None => s.enabled = false,
            }
        }
        self.check_loss();
    }

    /// Sets the trading state (the kill switch: `Halted`; `Active` resumes). Clears a pending
    /// trip.
    pub fn set_trading_state(&mut self, state: TradingState) {
        self.state = state;
        self.trip = None;
    }

    pub fn trading_state(&self) -> TradingState {
        self.state
    }

    /// The check that tripped the state and has not been reported on a refused order yet.
    pub fn pending_trip(&self) -> Option<RiskCheck> {
        self.trip.map(|t| t.check)
    }

    /// Refused requests, by check ([`RiskCheck::index`]).
    pub fn rejects(&self) -> &[u64; RiskCheck::COUNT] {
        &self.rejects
    }

    /// Refused requests for one check.
    pub fn rejects_of(&self, check: RiskCheck) -> u64 {
        self.rejects[check.index()]
    }

    /// Execution reports ignored as garbage.
    pub fn ignored_reports(&self) -> u64 {
        self.ignored_reports
    }

    /// The limits in force.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// Position in quantity units (0 for an unknown instrument).
    pub fn position(&self, instrument_id: u32) -> i64 {
        self.instrument(instrument_id).map_or(0, |s| s.position)
    }

    /// Open buy and sell quantity of an instrument, as the worst case counts them.
    pub fn open_qty(&self, instrument_id: u32) -> (i64, i64) {
        self.instrument(instrument_id)
            .map_or((0, 0), |s| (s.open_buy_qty, s.open_sell_qty))
    }

    /// Open orders in all instruments.
    pub fn open_orders(&self) -> usize {
        self.orders.len()
    }

    /// Open orders of one instrument.
    pub fn open_orders_of(&self, instrument_id: u32) -> u32 {
        if (instrument_id as usize) < RISK_INSTRUMENTS_MAX {
            self.orders.count(instrument_id)
        } else {
            0
        }
    }

    /// The open order known by `client_order_id` (working, pending replace or cancel id).
    pub fn open_order(&self, client_order_id: u64) -> Option<OpenOrderInfo> {
        let order = self.orders.get(self.orders.find(client_order_id)?);
        Some(OpenOrderInfo {
            client_order_id: order.client_order_id,
            instrument_id: order.instrument_id,
            side: order.side,
            ord_type: order.ord_type,
            px: if order.ord_type == ord_type::MARKET {
                0
            } else {
                order.px
            },
            leaves_qty: order.leaves_qty,
            cum_qty: order.cum_qty,
            counted_qty: order.counted_qty,
            replaces_pending: order.pending_len as usize,
            cancel_pending: order.cancel_pending,
            acked: order.acked,
        })
    }

    /// Every open order's client order id (cold: diagnostics, e.g. the kill switch's cancels).
    pub fn open_order_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.orders.all().map(|o| o.client_order_id)
    }

    /// Worst-case exposure totals.
    pub fn exposure(&self) -> Exposure {
        self.totals
    }

    /// The reference price of an instrument, once a top of book was seen.
    pub fn reference_px(&self, instrument_id: u32) -> Option<i64> {
        self.instrument(instrument_id)
            .map(|s| s.ref_px)
            .filter(|&px| px > 0)
    }

    /// Realised + marked-to-market PnL of all instruments.
    pub fn pnl(&self) -> Notional {
        self.pnl_total
    }

    /// Realised + marked-to-market PnL of one instrument.
    pub fn instrument_pnl(&self, instrument_id: u32) -> Notional {
        self.ledger(instrument_id).map_or(0, |l| l.pnl)
    }

    /// Realised PnL of one instrument (average cost; within one `px x qty` unit).
    pub fn realised_pnl(&self, instrument_id: u32) -> Notional {
        let multiplier = self.instrument(instrument_id).map_or(0, |s| s.multiplier);
        self.ledger(instrument_id)
            .map_or(0, |l| l.realised.saturating_mul(multiplier as i128))
    }

    fn instrument(&self, instrument_id: u32) -> Option<&InstrumentRisk> {
        self.instruments
            .get(instrument_id as usize)
            .filter(|s| s.enabled)
    }

    fn ledger(&self, instrument_id: u32) -> Option<&Ledger> {
        self.instrument(instrument_id)?;
        self.ledgers.get(instrument_id as usize)
    }
}

/// The price self-trade prevention records for an order: its own, or for a market order the
/// side's crossing sentinel.
#[inline(always)]
fn stp_px(market: bool, buy: bool, px: i64) -> i64 {
    match (market, buy) {
        (false, _) => px,
        (true, true) => MARKET_BUY_PX,
        (true, false) => MARKET_SELL_PX,
    }
}

/// A notional in the units of rejects, rounded up or down, saturated to `i64`.
fn to_reject_units(value: Notional, round_up: bool) -> i64 {
    let unit = 10i128.pow(NOTIONAL_EXP - REJECT_NOTIONAL_EXP);
    let units = if round_up {
        value.div_euclid(unit) + (value.rem_euclid(unit) != 0) as i128
    } else {
        value.div_euclid(unit)
    };
    saturate(units)
}

fn saturate(value: i128) -> i64 {
    value.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}
