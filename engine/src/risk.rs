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

mod grid;
pub mod limits;
mod orders;
mod restore;
mod status;
mod window;

use levibot_shm::records::{
    ExecutionReport, OrderRequest, RiskReject, exec_type, ord_type, order_kind, side, time_in_force,
};

use crate::strategy::ParamsReceiver;
use grid::GridDivisor;
pub use limits::{
    COLLAR_BPS_MAX, INSTRUMENT_NOTIONAL_MAX, InstrumentLimits, LimitProblem, NOTIONAL_EXP,
    NOTIONAL_ONE, Notional, QTY_UNITS_MAX, RateLimit, RiskLimits, RiskLimitsError,
    notional_from_decimal_parts, quote,
};
pub use orders::{OPEN_ORDERS_MAX, REPLACES_PENDING_MAX};
use orders::{OpenOrder, OpenOrders, PendingReplace};
pub use restore::{
    EngineState, LedgerState, OrderState, RESTORED_WORST_MAX, ReplaceState, RestoreError,
    RestoreProblem, StateProblem, TripState,
};
use window::{OrderKey, RateWindow, RecentOrders};
pub use window::{RATE_WINDOW_MAX, RECENT_ORDERS_MAX};

/// Most instruments one risk engine covers (instrument ids `0..RISK_INSTRUMENTS_MAX`).
pub const RISK_INSTRUMENTS_MAX: usize = 64;
/// Strategies whose client order ids are tracked: the whole `strategy_id` (`u16`) range.
pub const RISK_STRATEGIES_MAX: usize = 1 << 16;
/// Notional limits and values in a [`RiskReject`] are in 10^-`REJECT_NOTIONAL_EXP` quote units
/// (a value rounded away from its limit, the limit towards it, so a journaled value is always
/// beyond its journaled limit).
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

/// One instrument's hot data: what a check reads and writes, together (five adjacent cache
/// lines, which the adjacent-line prefetcher brings in pairs, rather than fields spread over
/// several arrays), and nothing else: what only execution reports, marks or rejects need is in
/// [`Ledger`] or in the limits. Derived values are computed when limits or the reference
/// change, never in `check`:
///
/// - `tick`, `lot`: division-free grid tests ([`GridDivisor`]);
/// - `notional_min_px_qty`, `order_notional_max_px_qty`: the notional limits in this
///   instrument's `px x qty` units, rounded so that comparing `px x qty` with them is exactly
///   comparing the notional with the limit (`ceil(min / multiplier)`, `floor(max /
///   multiplier)`): one multiplication per order instead of two;
/// - `collar_low`, `collar_high`: `ref x (10_000 -/+ collar_bps)`, compared with `px x 10_000`
///   (no division);
/// - `ref_notional`: one quantity unit's notional at the reference price.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct InstrumentRisk {
    tick: GridDivisor,
    lot: GridDivisor,
    qty_min: i64,
    /// `i64::MAX` when the filter has no maximum.
    qty_max: i64,
    price_min: i64,
    price_max: i64,
    order_qty_max: i64,
    position_max: i64,
    notional_min_px_qty: i128,
    order_notional_max_px_qty: i128,
    multiplier: i64,
    collar_bps: i64,
    open_orders_max: u32,
    enabled: bool,

    /// Reference price (mid of the last top of book); 0: none yet.
    ref_px: i64,
    collar_low: i128,
    collar_high: i128,
    ref_notional: i128,

    position: i64,
    open_buy_qty: i64,
    open_sell_qty: i64,
    /// Highest price of our open buys (live and pending replaces), `NO_BUY_PX` if none.
    best_buy_px: i64,
    /// Lowest price of our open sells, `NO_SELL_PX` if none.
    best_sell_px: i64,
    /// This instrument's part of the exposure totals.
    gross: Notional,
    long: Notional,
    short: Notional,
}

const _: () = assert!(size_of::<InstrumentRisk>() <= 5 * 64);

impl InstrumentRisk {
    const EMPTY: InstrumentRisk = InstrumentRisk {
        tick: GridDivisor::NONE,
        lot: GridDivisor::NONE,
        qty_min: 0,
        qty_max: 0,
        price_min: 0,
        price_max: 0,
        order_qty_max: 0,
        position_max: 0,
        notional_min_px_qty: 0,
        order_notional_max_px_qty: 0,
        multiplier: 1,
        collar_bps: 0,
        open_orders_max: 0,
        enabled: false,
        ref_px: 0,
        collar_low: 0,
        collar_high: 0,
        ref_notional: 0,
        position: 0,
        open_buy_qty: 0,
        open_sell_qty: 0,
        best_buy_px: NO_BUY_PX,
        best_sell_px: NO_SELL_PX,
        gross: 0,
        long: 0,
        short: 0,
    };

    /// Takes validated limits (cold).
    fn load(&mut self, limits: &InstrumentLimits) {
        let multiplier = limits
            .notional_multiplier()
            .expect("validated limits have a multiplier");
        let m = multiplier as i128;
        let or_max = |v: i64| if v == 0 { i64::MAX } else { v };
        self.tick = GridDivisor::new(limits.tick_units);
        self.lot = GridDivisor::new(limits.lot_units);
        self.qty_min = limits.qty_min_units;
        self.qty_max = or_max(limits.qty_max_units);
        self.price_min = limits.price_min_units;
        self.price_max = or_max(limits.price_max_units);
        self.order_qty_max = limits.order_qty_max_units;
        self.position_max = limits.position_max_units;
        self.notional_min_px_qty = (limits.notional_min + m - 1) / m;
        self.order_notional_max_px_qty = limits.order_notional_max / m;
        self.multiplier = multiplier;
        self.collar_bps = limits.collar_bps as i64;
        self.open_orders_max = limits.open_orders_max;
        self.enabled = true;
        self.set_reference(self.ref_px);
    }

    fn set_reference(&mut self, ref_px: i64) {
        self.ref_px = ref_px;
        let r = ref_px as i128;
        self.collar_low = r * (BPS_ONE - self.collar_bps) as i128;
        self.collar_high = r * (BPS_ONE + self.collar_bps) as i128;
        self.ref_notional = r * self.multiplier as i128;
    }

    /// The worst-case contributions for these worst-case positions.
    #[inline(always)]
    fn contributions(&self, worst_long: i64, worst_short: i64) -> (Notional, Notional, Notional) {
        let r = self.ref_notional;
        (
            worst_long.max(-worst_short) as i128 * r,
            worst_long as i128 * r,
            worst_short as i128 * r,
        )
    }
}

/// One instrument's cold state (fills, marks, limit changes): its money, in its `px x qty`
/// units, and the bound on its reference price.
#[derive(Clone, Copy, Debug)]
struct Ledger {
    /// The largest `position_max_units` the instrument has had: no worst-case position exceeds
    /// it (limits only raise it; fills and reports only shrink worst cases).
    qty_bound: i64,
    /// The largest `ref_notional` accepted: `INSTRUMENT_NOTIONAL_MAX / qty_bound`.
    ref_notional_max: i128,
    /// PnL of closed quantity.
    realised: i128,
    /// Entry cost of the open position, signed like it (average-cost accounting: a reduction
    /// takes its share of the cost).
    open_cost: i128,
    /// Price the position is marked at: the reference, or the last fill before any.
    mark_px: i64,
    /// `realised + position x mark - open_cost`, in [`Notional`] units: this instrument's part
    /// of the PnL total.
    pnl: Notional,
}

impl Ledger {
    const EMPTY: Ledger = Ledger {
        qty_bound: 1,
        ref_notional_max: INSTRUMENT_NOTIONAL_MAX,
        realised: 0,
        open_cost: 0,
        mark_px: 0,
        pnl: 0,
    };

    /// Raises `qty_bound` to `worst` if that is larger, and lowers the largest reference
    /// notional with it, so that the instrument's notional stays within
    /// `INSTRUMENT_NOTIONAL_MAX`: for new limits, and for restored and adopted orders (which
    /// may build more than the limits in force allow). The pair always agrees
    /// (`ref_notional_max == INSTRUMENT_NOTIONAL_MAX / qty_bound`), from `EMPTY` on.
    fn raise_bound(&mut self, worst: i64) {
        if worst > self.qty_bound {
            self.qty_bound = worst;
            self.ref_notional_max = INSTRUMENT_NOTIONAL_MAX / worst as i128;
        }
    }
}

/// The approved order's effect, computed by the checks and applied if all pass.
#[derive(Clone, Copy)]
struct Approval {
    gross: Notional,
    long: Notional,
    short: Notional,
    totals: Exposure,
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

    /// All checks. On pass the request is recorded (open order, rate windows, recent orders)
    /// and `Ok(())` returned; on refusal the [`RiskReject`] (the request, the check's code, the
    /// limit and the value that broke it), counted in [`rejects`](Self::rejects) and not
    /// recorded. `now_ns` must not go back (rate and duplicate windows).
    #[inline]
    pub fn check(&mut self, order: &OrderRequest, now_ns: u64) -> Result<(), RiskReject> {
        match order.kind {
            order_kind::NEW => self.check_new(order, now_ns),
            order_kind::REPLACE => self.check_replace(order, now_ns),
            order_kind::CANCEL => self.check_cancel(order, now_ns),
            order_kind::MASS_CANCEL => {
                self.message_window.record(now_ns);
                Ok(())
            }
            // Opened here, before the request leaves, so the round is open before any answer.
            order_kind::MASS_STATUS => {
                self.begin_status_round();
                self.message_window.record(now_ns);
                Ok(())
            }
            _ => Err(self.reject(order, RiskCheck::InvalidOrder, 0, invalid_field::KIND)),
        }
    }

    #[inline(always)]
    fn check_new(&mut self, o: &OrderRequest, now_ns: u64) -> Result<(), RiskReject> {
        self.check_fields(o)?;
        let id = self.check_instrument(o)?;
        self.check_client_order_id(o)?;
        self.check_halted(o)?;
        self.check_rates(o, now_ns, true)?;
        let key = OrderKey {
            px: o.px,
            qty: o.qty,
            instrument_id: o.instrument_id,
            side: o.side,
        };
        let window_ns = self.globals.duplicate_window_ns;
        if let Some(sent_ns) = self.recent.find(&key, now_ns, window_ns) {
            let age = now_ns.saturating_sub(sent_ns);
            return Err(self.reject(o, RiskCheck::DuplicateOrder, window_ns as i64, age as i64));
        }
        let stp_px = self.check_terms(o, id)?;
        let s = &self.instruments[id];
        let open = self.orders.len() as u32;
        if open >= self.globals.open_orders_max {
            let limit = self.globals.open_orders_max;
            return Err(self.reject(o, RiskCheck::OpenOrders, limit as i64, open as i64 + 1));
        }
        let open = self.orders.count(o.instrument_id);
        if open >= s.open_orders_max {
            let limit = s.open_orders_max as i64;
            let check = RiskCheck::InstrumentOpenOrders;
            return Err(self.reject(o, check, limit, open as i64 + 1));
        }
        let buy = o.side == side::BUY;
        // Branch-free: the order adds to one side only.
        let (add_buy, add_sell) = if buy { (o.qty, 0) } else { (0, o.qty) };
        let worst_long = s.position + s.open_buy_qty + add_buy;
        let worst_short = s.position - s.open_sell_qty - add_sell;
        let approval = self.check_worst_case(o, id, buy, worst_long, worst_short)?;

        // Passed: record it.
        if !self.record_new(o, id, stp_px) {
            // Unreachable: open_orders_max <= OPEN_ORDERS_MAX (validated). Refuse, never panic.
            let limit = OPEN_ORDERS_MAX as i64;
            return Err(self.reject(o, RiskCheck::OpenOrders, limit, limit + 1));
        }
        self.message_window.record(now_ns);
        self.order_window.record(now_ns);
        self.recent.record(key, now_ns);
        // The checks computed the exposure with the order: no need to compute it again.
        let s = &mut self.instruments[id];
        s.gross = approval.gross;
        s.long = approval.long;
        s.short = approval.short;
        self.totals = approval.totals;
        Ok(())
    }

    #[inline(always)]
    fn check_replace(&mut self, o: &OrderRequest, now_ns: u64) -> Result<(), RiskReject> {
        self.check_fields(o)?;
        let id = self.check_instrument(o)?;
        self.check_client_order_id(o)?;
        self.check_halted(o)?;
        self.check_rates(o, now_ns, true)?;
        let Some(slot) = self.orders.find(o.orig_client_order_id) else {
            let target = o.orig_client_order_id as i64;
            return Err(self.reject(o, RiskCheck::UnknownOrder, 0, target));
        };
        let target = *self.orders.get(slot);
        if target.instrument_id != o.instrument_id
            || target.side != o.side
            || target.ord_type != ord_type::LIMIT
            || o.ord_type != ord_type::LIMIT
        {
            let field = if o.ord_type != ord_type::LIMIT {
                invalid_field::ORD_TYPE
            } else {
                invalid_field::TARGET
            };
            return Err(self.reject(o, RiskCheck::InvalidOrder, 0, field));
        }
        if target.pending_len as usize >= REPLACES_PENDING_MAX {
            let limit = REPLACES_PENDING_MAX as i64;
            return Err(self.reject(o, RiskCheck::ReplacesPending, limit, limit + 1));
        }
        // The replace's quantity is the order's new total (FIX OrderQty): what it leaves open is
        // that minus what has filled, and it must leave something.
        let replacement_qty = o.qty - target.cum_qty;
        if replacement_qty <= 0 {
            return Err(self.reject(o, RiskCheck::InvalidOrder, 0, invalid_field::QTY));
        }
        self.check_terms(o, id)?;
        let s = &self.instruments[id];
        let buy = o.side == side::BUY;
        // The replacement instead of the original.
        let delta = replacement_qty - target.counted_qty;
        let (add_buy, add_sell) = if buy { (delta, 0) } else { (0, delta) };
        let worst_long = s.position + s.open_buy_qty + add_buy;
        let worst_short = s.position - s.open_sell_qty - add_sell;
        self.check_worst_case(o, id, buy, worst_long, worst_short)?;

        // Passed: the replace is pending until the venue answers.
        self.message_window.record(now_ns);
        self.order_window.record(now_ns);
        self.record_replace(o, id, slot);
        Ok(())
    }

    #[inline]
    fn check_cancel(&mut self, o: &OrderRequest, now_ns: u64) -> Result<(), RiskReject> {
        let id = self.check_instrument(o)?;
        self.check_client_order_id(o)?;
        let slot = match self.orders.find(o.orig_client_order_id) {
            Some(slot) if self.orders.get(slot).instrument_id as usize == id => slot,
            _ => {
                let target = o.orig_client_order_id as i64;
                return Err(self.reject(o, RiskCheck::UnknownOrder, 0, target));
            }
        };
        self.check_rates(o, now_ns, false)?;
        self.message_window.record(now_ns);
        self.record_cancel(o, slot);
        Ok(())
    }

    // What a request that passed leaves behind: shared by `check` and `restore_order` (see
    // `restore.rs`), so that a restored order is recorded exactly as a checked one. Rate
    // windows and recent orders are the caller's: a restore touches neither.

    /// Records a new order as open: the table, its side's open quantity and best price (not
    /// the exposure: `check` has it computed already, a restore refreshes it). `false` if the
    /// table is full.
    #[inline(always)]
    fn record_new(&mut self, o: &OrderRequest, id: usize, stp_px: i64) -> bool {
        let order = OpenOrder::new(
            o.client_order_id,
            o.instrument_id,
            o.side,
            o.ord_type,
            stp_px,
            o.qty,
        );
        if self.orders.insert(order).is_none() {
            return false;
        }
        let s = &mut self.instruments[id];
        if o.side == side::BUY {
            s.open_buy_qty += o.qty;
            s.best_buy_px = s.best_buy_px.max(stp_px);
        } else {
            s.open_sell_qty += o.qty;
            s.best_sell_px = s.best_sell_px.min(stp_px);
        }
        true
    }

    /// Records a replace of the order in `slot` as pending until the venue answers (the slot
    /// has room for one more: `pending_len < REPLACES_PENDING_MAX`).
    #[inline(always)]
    fn record_replace(&mut self, o: &OrderRequest, id: usize, slot: u16) {
        let order = self.orders.get_mut(slot);
        order.pending[order.pending_len as usize] = PendingReplace {
            client_order_id: o.client_order_id,
            px: o.px,
            qty: o.qty,
        };
        order.pending_len += 1;
        self.orders.index_insert(o.client_order_id, slot);
        let s = &mut self.instruments[id];
        if o.side == side::BUY {
            s.best_buy_px = s.best_buy_px.max(o.px);
        } else {
            s.best_sell_px = s.best_sell_px.min(o.px);
        }
        self.recount(slot);
        self.refresh_exposure(id);
    }

    /// Records a cancel of the order in `slot` as pending.
    #[inline(always)]
    fn record_cancel(&mut self, o: &OrderRequest, slot: u16) {
        // The venue may answer with the cancel's id: it finds the order too (the latest only).
        let order = *self.orders.get(slot);
        if order.cancel_pending {
            self.orders.index_remove(order.cancel_client_order_id);
        }
        let order = self.orders.get_mut(slot);
        order.cancel_pending = true;
        order.cancel_client_order_id = o.client_order_id;
        self.orders.index_insert(o.client_order_id, slot);
    }

    /// Raises the strategy's lowest client order id not yet seen to at least `next` (ids
    /// below it are duplicates from then on). Cold: `check` does this in
    /// `check_client_order_id`, with the test.
    fn see_client_order_id(&mut self, strategy_id: u16, next: u64) {
        let mark = &mut self.next_client_order_id[strategy_id as usize];
        *mark = (*mark).max(next);
    }

    /// Side, type, time in force, quantity and (limit) price make sense.
    #[inline(always)]
    fn check_fields(&mut self, o: &OrderRequest) -> Result<(), RiskReject> {
        // One combined test on the hot path; the cold path finds which field.
        let side_ok = o.side == side::BUY || o.side == side::SELL;
        let limit = o.ord_type == ord_type::LIMIT;
        let type_ok = limit || o.ord_type == ord_type::MARKET;
        let tif = o.time_in_force;
        let tif_ok =
            tif == time_in_force::GTC || tif == time_in_force::IOC || tif == time_in_force::FOK;
        let px_ok = !limit || o.px > 0;
        if side_ok & type_ok & tif_ok & px_ok & (o.qty > 0) {
            return Ok(());
        }
        let field = if !side_ok {
            invalid_field::SIDE
        } else if !type_ok {
            invalid_field::ORD_TYPE
        } else if !tif_ok {
            invalid_field::TIME_IN_FORCE
        } else if o.qty <= 0 {
            invalid_field::QTY
        } else {
            invalid_field::PX
        };
        Err(self.reject(o, RiskCheck::InvalidOrder, 0, field))
    }

    #[inline(always)]
    fn check_instrument(&mut self, o: &OrderRequest) -> Result<usize, RiskReject> {
        let id = o.instrument_id as usize;
        if id < RISK_INSTRUMENTS_MAX && self.instruments[id].enabled {
            return Ok(id);
        }
        let limit = RISK_INSTRUMENTS_MAX as i64;
        Err(self.reject(o, RiskCheck::UnknownInstrument, limit, id as i64))
    }

    /// Records the id as seen, whatever the outcome.
    #[inline(always)]
    fn check_client_order_id(&mut self, o: &OrderRequest) -> Result<(), RiskReject> {
        let next = &mut self.next_client_order_id[o.strategy_id as usize];
        let expected = *next;
        let id = o.client_order_id;
        *next = expected.max(id.saturating_add(1));
        if id >= expected && self.orders.find(id).is_none() {
            return Ok(());
        }
        let limit = if id >= expected { id } else { expected };
        let check = RiskCheck::DuplicateClientOrderId;
        Err(self.reject(o, check, limit as i64, id as i64))
    }

    #[inline(always)]
    fn check_halted(&mut self, o: &OrderRequest) -> Result<(), RiskReject> {
        if self.state != TradingState::Halted {
            return Ok(());
        }
        Err(self.reject_state(o, RiskCheck::Halted, 0, TradingState::Halted as i64))
    }

    #[inline(always)]
    fn check_rates(
        &mut self,
        o: &OrderRequest,
        now_ns: u64,
        order: bool,
    ) -> Result<(), RiskReject> {
        let g = self.globals;
        if !self
            .message_window
            .admits(now_ns, g.message_rate.count_max, g.message_rate.window_ns)
        {
            let count = self
                .message_window
                .count_within(now_ns, g.message_rate.window_ns);
            let limit = g.message_rate.count_max as i64;
            return Err(self.reject(o, RiskCheck::MessageRate, limit, count as i64 + 1));
        }
        if order
            && !self
                .order_window
                .admits(now_ns, g.order_rate.count_max, g.order_rate.window_ns)
        {
            let count = self
                .order_window
                .count_within(now_ns, g.order_rate.window_ns);
            let limit = g.order_rate.count_max as i64;
            return Err(self.reject(o, RiskCheck::OrderRate, limit, count as i64 + 1));
        }
        Ok(())
    }

    /// Filters, reference, collar, order size, self-trade; the price self-trade prevention
    /// records for the order.
    #[inline(always)]
    fn check_terms(&mut self, o: &OrderRequest, id: usize) -> Result<i64, RiskReject> {
        let s = &self.instruments[id];
        let (px, qty) = (o.px, o.qty);
        let market = o.ord_type == ord_type::MARKET;
        // qty > 0 and (limit) px > 0 were checked: the casts are exact.
        if !s.lot.divides(qty as u64) {
            return Err(self.reject_grid(o, id, RiskCheck::QtyLot));
        }
        if qty < s.qty_min {
            return Err(self.reject(o, RiskCheck::QtyMin, s.qty_min, qty));
        }
        if qty > s.qty_max {
            return Err(self.reject(o, RiskCheck::QtyMax, s.qty_max, qty));
        }
        if !market {
            if !s.tick.divides(px as u64) {
                return Err(self.reject_grid(o, id, RiskCheck::PriceTick));
            }
            if px < s.price_min {
                return Err(self.reject(o, RiskCheck::PriceMin, s.price_min, px));
            }
            if px > s.price_max {
                return Err(self.reject(o, RiskCheck::PriceMax, s.price_max, px));
            }
        }
        if s.ref_px == 0 {
            return Err(self.reject(o, RiskCheck::NoReferencePrice, 0, 0));
        }
        if !market {
            let scaled = px as i128 * BPS_ONE as i128;
            if scaled < s.collar_low || scaled > s.collar_high {
                return Err(self.reject_collar(o, id));
            }
        }
        // A market order's notional is taken at the reference price.
        let notional_px = if market { s.ref_px } else { px };
        let notional = notional_px as i128 * qty as i128;
        if notional < s.notional_min_px_qty {
            return Err(self.reject_order_notional(o, id, RiskCheck::NotionalMin, notional));
        }
        if qty > s.order_qty_max {
            return Err(self.reject(o, RiskCheck::OrderQtyMax, s.order_qty_max, qty));
        }
        if notional > s.order_notional_max_px_qty {
            let check = RiskCheck::OrderNotionalMax;
            return Err(self.reject_order_notional(o, id, check, notional));
        }
        let buy = o.side == side::BUY;
        let stp_px = stp_px(market, buy, px);
        let (crosses, opposite) = if buy {
            (stp_px >= s.best_sell_px, s.best_sell_px)
        } else {
            (stp_px <= s.best_buy_px, s.best_buy_px)
        };
        if crosses {
            return Err(self.reject(o, RiskCheck::SelfTrade, opposite, px));
        }
        Ok(stp_px)
    }

    /// Reduce-only, position, gross and net exposure for the instrument's worst-case
    /// positions with the order.
    #[inline(always)]
    fn check_worst_case(
        &mut self,
        o: &OrderRequest,
        id: usize,
        buy: bool,
        worst_long: i64,
        worst_short: i64,
    ) -> Result<Approval, RiskReject> {
        if self.state == TradingState::ReduceOnly {
            // Reduces without flipping, whatever fills: a buy leaves the position <= 0 even if
            // every open buy fills, a sell >= 0.
            let (reduces, value) = if buy {
                (worst_long <= 0, worst_long)
            } else {
                (worst_short >= 0, worst_short)
            };
            if !reduces {
                return Err(self.reject_state(o, RiskCheck::ReduceOnly, 0, value));
            }
        }
        let s = &self.instruments[id];
        let worst = worst_long.max(-worst_short);
        if worst > s.position_max {
            return Err(self.reject(o, RiskCheck::PositionMax, s.position_max, worst));
        }
        let (gross, long, short) = s.contributions(worst_long, worst_short);
        let t = &self.totals;
        let totals = Exposure {
            gross: t.gross - s.gross + gross,
            net_long: t.net_long - s.long + long,
            net_short: t.net_short - s.short + short,
        };
        let g = &self.globals;
        if totals.gross > g.gross_exposure_max {
            let limit = g.gross_exposure_max;
            return Err(self.reject_notional(o, RiskCheck::GrossExposure, limit, totals.gross));
        }
        if totals.net() > g.net_exposure_max {
            let limit = g.net_exposure_max;
            return Err(self.reject_notional(o, RiskCheck::NetExposure, limit, totals.net()));
        }
        Ok(Approval {
            gross,
            long,
            short,
            totals,
        })
    }

    /// Counts and builds a reject (out of line: the passing path stays small).
    #[cold]
    #[inline(never)]
    fn reject(&mut self, o: &OrderRequest, check: RiskCheck, limit: i64, value: i64) -> RiskReject {
        self.rejects[check.index()] += 1;
        RiskReject {
            request: *o,
            limit,
            value,
            check: check.code(),
            reserved_a: 0,
            reserved_b: 0,
        }
    }

    /// A trading-state refusal: the pending trip's code if the engine tripped since the last
    /// one, else `check`.
    #[cold]
    #[inline(never)]
    fn reject_state(
        &mut self,
        o: &OrderRequest,
        check: RiskCheck,
        limit: i64,
        value: i64,
    ) -> RiskReject {
        match self.trip.take() {
            Some(trip) => self.reject(o, trip.check, trip.limit, trip.value),
            None => self.reject(o, check, limit, value),
        }
    }

    #[cold]
    #[inline(never)]
    fn reject_grid(&mut self, o: &OrderRequest, id: usize, check: RiskCheck) -> RiskReject {
        let limits = self.limits.instruments[id];
        let (limit, value) = match check {
            RiskCheck::PriceTick => (limits.map_or(0, |l| l.tick_units), o.px),
            _ => (limits.map_or(0, |l| l.lot_units), o.qty),
        };
        self.reject(o, check, limit, value)
    }

    #[cold]
    #[inline(never)]
    fn reject_collar(&mut self, o: &OrderRequest, id: usize) -> RiskReject {
        let s = &self.instruments[id];
        let distance = (o.px as i128 - s.ref_px as i128).abs() * BPS_ONE as i128;
        let r = s.ref_px as i128;
        let bps = (distance + r - 1) / r;
        let limit = s.collar_bps;
        self.reject(o, RiskCheck::PriceCollar, limit, saturate(bps))
    }

    #[cold]
    #[inline(never)]
    fn reject_order_notional(
        &mut self,
        o: &OrderRequest,
        id: usize,
        check: RiskCheck,
        px_qty: i128,
    ) -> RiskReject {
        let s = &self.instruments[id];
        let value = px_qty.saturating_mul(s.multiplier as i128);
        let limits = self.limits.instruments[id];
        let limit = limits.map_or(0, |l| match check {
            RiskCheck::NotionalMin => l.notional_min,
            _ => l.order_notional_max,
        });
        self.reject_notional(o, check, limit, value)
    }

    #[cold]
    #[inline(never)]
    fn reject_notional(
        &mut self,
        o: &OrderRequest,
        check: RiskCheck,
        limit: Notional,
        value: Notional,
    ) -> RiskReject {
        // Round the value away from the limit and the limit towards it.
        let above = value > limit;
        let limit = to_reject_units(limit, !above);
        let value = to_reject_units(value, above);
        self.reject(o, check, limit, value)
    }

    /// Updates positions and open orders from the venue's report. Garbage (unknown id, another
    /// instrument, a zero or negative fill, an unknown exec type) is ignored and counted.
    pub fn on_execution(&mut self, report: &ExecutionReport, now_ns: u64) {
        if report.exec_type == exec_type::ORDER_STATUS {
            return self.on_order_status(report);
        }
        let Some(slot) = self.orders.find(report.client_order_id) else {
            self.ignored_reports += 1;
            return;
        };
        let order = *self.orders.get(slot);
        if order.instrument_id != report.instrument_id {
            self.ignored_reports += 1;
            return;
        }
        let role = Role::of(&order, report.client_order_id);
        match report.exec_type {
            exec_type::NEW => self.orders.get_mut(slot).acked = true,
            exec_type::TRADE => self.on_fill(slot, role, report, now_ns),
            exec_type::CANCELED | exec_type::EXPIRED => self.remove_order(slot),
            exec_type::REJECTED => match role {
                Role::Live => self.remove_order(slot),
                Role::Pending(k) => self.drop_pending(slot, k),
                Role::Cancel => {
                    self.orders.index_remove(order.cancel_client_order_id);
                    self.orders.get_mut(slot).cancel_pending = false;
                }
            },
            exec_type::REPLACED => {
                let k = match role {
                    Role::Pending(k) => k,
                    Role::Live if order.pending_len > 0 => 0,
                    _ => {
                        self.ignored_reports += 1;
                        return;
                    }
                };
                self.commit_replace(slot, k, report.leaves_qty);
            }
            _ => self.ignored_reports += 1,
        }
    }

    fn on_fill(&mut self, slot: u16, role: Role, report: &ExecutionReport, now_ns: u64) {
        if report.last_qty <= 0 || report.last_px <= 0 {
            self.ignored_reports += 1;
            return;
        }
        if let Role::Pending(k) = role {
            // A fill of the replacement: the venue replaced it (the REPLACED report is missing
            // or late). A replacement that leaves nothing open has nothing to fill.
            if !self.commit_replace(slot, k, 0) {
                self.ignored_reports += 1;
                return;
            }
        }
        self.fill(slot, report.last_qty, report.last_px, report.leaves_qty);
        let rate = self.globals.fill_rate;
        if !self
            .fill_window
            .admits(now_ns, rate.count_max, rate.window_ns)
        {
            let fills = self.fill_window.count_within(now_ns, rate.window_ns) + 1;
            self.trip_to(
                TradingState::Halted,
                Trip {
                    check: RiskCheck::RepeatedExecution,
                    limit: rate.count_max as i64,
                    value: fills as i64,
                },
            );
        }
        self.fill_window.record(now_ns);
    }

    /// A fill of `last_qty` (positive) at `last_px` of the order in `slot`, which the venue
    /// says leaves `report_leaves` open: position, cost, PnL, leaves, exposure.
    fn fill(&mut self, slot: u16, last_qty: i64, last_px: i64, report_leaves: i64) {
        let order = *self.orders.get(slot);
        let id = order.instrument_id as usize;
        let buy = order.side == side::BUY;
        // Never more than what is open: a garbage report cannot push the position past what
        // risk approved.
        let qty = last_qty.min(order.leaves_qty);
        self.apply_fill(id, buy, qty, last_px);
        let leaves = (order.leaves_qty - qty).min(report_leaves.max(0));
        if leaves == 0 {
            self.remove_order(slot);
        } else {
            let o = self.orders.get_mut(slot);
            o.leaves_qty = leaves;
            o.cum_qty += qty;
            self.recount(slot);
            self.refresh_exposure(id);
        }
        self.refresh_pnl(id);
    }

    /// Position and cost after a fill of `qty` at `px` (average cost).
    fn apply_fill(&mut self, id: usize, buy: bool, qty: i64, px: i64) {
        let s = &mut self.instruments[id];
        let ledger = &mut self.ledgers[id];
        let position = s.position as i128;
        let signed = if buy { qty as i128 } else { -(qty as i128) };
        let px = px as i128;
        if position == 0 || (position > 0) == (signed > 0) {
            ledger.open_cost = ledger.open_cost.saturating_add(px * signed);
        } else {
            let closed = signed.abs().min(position.abs());
            let cost_closed = ledger.open_cost.saturating_mul(closed) / position.abs();
            let proceeds = closed * px * position.signum();
            ledger.realised = ledger
                .realised
                .saturating_add(proceeds.saturating_sub(cost_closed));
            ledger.open_cost -= cost_closed;
            let opened = signed.abs() - closed;
            ledger.open_cost = ledger
                .open_cost
                .saturating_add(opened * px * signed.signum());
        }
        s.position = s.position.saturating_add(signed as i64);
        if s.ref_px == 0 {
            ledger.mark_px = px as i64;
        }
    }

    /// Makes pending replace `k` the working order; the older requests are gone.
    /// `false` if nothing is left of the order (it left the table).
    fn commit_replace(&mut self, slot: u16, k: usize, leaves_qty: i64) -> bool {
        let order = *self.orders.get(slot);
        let replace = order.pending[k];
        self.orders.index_remove(order.client_order_id);
        for older in &order.pending[..k] {
            self.orders.index_remove(older.client_order_id);
        }
        let o = self.orders.get_mut(slot);
        o.client_order_id = replace.client_order_id;
        o.px = replace.px;
        // The venue's leaves if it gave them, never more than the replace leaves open.
        let open = replace.qty - o.cum_qty;
        o.leaves_qty = if leaves_qty > 0 {
            leaves_qty.min(open)
        } else {
            open
        };
        o.pending.copy_within(k + 1..REPLACES_PENDING_MAX, 0);
        o.pending_len -= k as u8 + 1;
        let id = order.instrument_id as usize;
        let open = o.leaves_qty > 0;
        if open {
            self.recount(slot);
            self.refresh_exposure(id);
        } else {
            self.remove_order(slot);
        }
        // The old working price (and older pending ones) left: find the side's best again.
        self.rescan_best(id, order.side);
        open
    }

    /// Drops pending replace `k` (the venue refused it).
    fn drop_pending(&mut self, slot: u16, k: usize) {
        let order = *self.orders.get(slot);
        let replace = order.pending[k];
        self.orders.index_remove(replace.client_order_id);
        let o = self.orders.get_mut(slot);
        o.pending.copy_within(k + 1..REPLACES_PENDING_MAX, k);
        o.pending_len -= 1;
        self.recount(slot);
        let id = order.instrument_id as usize;
        self.refresh_best(id, order.side, replace.px);
        self.refresh_exposure(id);
    }

    fn remove_order(&mut self, slot: u16) {
        let order = self.orders.remove(slot);
        let id = order.instrument_id as usize;
        let s = &mut self.instruments[id];
        if order.side == side::BUY {
            s.open_buy_qty -= order.counted_qty;
        } else {
            s.open_sell_qty -= order.counted_qty;
        }
        let buy = order.side == side::BUY;
        let best = order.pending().iter().fold(order.px, |best, p| {
            if buy { best.max(p.px) } else { best.min(p.px) }
        });
        self.refresh_best(id, order.side, best);
        self.refresh_exposure(id);
    }

    /// Brings the order's counted quantity, and its instrument's open quantity, up to date.
    fn recount(&mut self, slot: u16) {
        let order = self.orders.get_mut(slot);
        let counted = order.worst_qty();
        let delta = counted - order.counted_qty;
        order.counted_qty = counted;
        let (id, buy) = (order.instrument_id as usize, order.side == side::BUY);
        let s = &mut self.instruments[id];
        if buy {
            s.open_buy_qty += delta;
        } else {
            s.open_sell_qty += delta;
        }
    }

    /// After an order at `gone_px` left (or changed price) on `order_side`: finds the best
    /// resting price of that side again, if `gone_px` was it (a walk over the instrument's open
    /// orders; execution reports only).
    fn refresh_best(&mut self, id: usize, order_side: u8, gone_px: i64) {
        let s = &self.instruments[id];
        let best = if order_side == side::BUY {
            s.best_buy_px
        } else {
            s.best_sell_px
        };
        if gone_px == best {
            self.rescan_best(id, order_side);
        }
    }

    /// The best resting price of one side of an instrument, from its open orders.
    fn rescan_best(&mut self, id: usize, order_side: u8) {
        let buy = order_side == side::BUY;
        let mut best = if buy { NO_BUY_PX } else { NO_SELL_PX };
        for order in self.orders.of_instrument(id as u32) {
            if order.side != order_side {
                continue;
            }
            let prices = std::iter::once(order.px).chain(order.pending().iter().map(|p| p.px));
            for px in prices {
                best = if buy { best.max(px) } else { best.min(px) };
            }
        }
        let s = &mut self.instruments[id];
        if buy {
            s.best_buy_px = best;
        } else {
            s.best_sell_px = best;
        }
    }

    /// The instrument's exposure contributions and the totals, from its position, open
    /// quantities and reference.
    fn refresh_exposure(&mut self, id: usize) {
        let s = &mut self.instruments[id];
        let worst_long = s.position.saturating_add(s.open_buy_qty);
        let worst_short = s.position.saturating_sub(s.open_sell_qty);
        let (gross, long, short) = s.contributions(worst_long, worst_short);
        let t = &mut self.totals;
        t.gross = t.gross - s.gross + gross;
        t.net_long = t.net_long - s.long + long;
        t.net_short = t.net_short - s.short + short;
        (s.gross, s.long, s.short) = (gross, long, short);
    }

    /// The instrument's PnL and the total; trips on a loss beyond `loss_max`.
    fn refresh_pnl(&mut self, id: usize) {
        let s = &self.instruments[id];
        let ledger = &mut self.ledgers[id];
        let marked = (s.position as i128).saturating_mul(ledger.mark_px as i128);
        let pnl = ledger
            .realised
            .saturating_add(marked)
            .saturating_sub(ledger.open_cost)
            .saturating_mul(s.multiplier as i128);
        self.pnl_total = self
            .pnl_total
            .saturating_sub(ledger.pnl)
            .saturating_add(pnl);
        ledger.pnl = pnl;
        self.check_loss();
    }

    fn check_loss(&mut self) {
        let g = self.globals;
        if self.pnl_total < -g.loss_max && self.state < g.loss_state {
            let limit = -to_reject_units(g.loss_max, false);
            let value = to_reject_units(self.pnl_total, false);
            let check = RiskCheck::MaxLoss;
            self.trip_to(
                g.loss_state,
                Trip {
                    check,
                    limit,
                    value,
                },
            );
        }
    }

    fn trip_to(&mut self, state: TradingState, trip: Trip) {
        if state > self.state {
            self.state = state;
            self.trip = Some(trip);
        }
    }

    /// The reference (mark) price of an instrument from its top of book, in price units (0: that
    /// side is absent): the mid of both sides (rounded down to a unit), or the one side there
    /// is; with neither, the last reference stays. Unknown instruments are ignored, and so is a
    /// price at which the instrument's largest position limit would be worth more than
    /// [`INSTRUMENT_NOTIONAL_MAX`] (about 6.6 x 10^17 quote units: garbage, and the bound that
    /// keeps the exposure sums exact without overflow checks). Updates the exposures and the
    /// PnL, and trips on a loss beyond `loss_max`.
    #[inline]
    pub fn on_market(&mut self, instrument_id: u32, bid_px: i64, ask_px: i64) {
        let id = instrument_id as usize;
        if id >= RISK_INSTRUMENTS_MAX || !self.instruments[id].enabled {
            return;
        }
        let ref_px = match (bid_px > 0, ask_px > 0) {
            (true, true) => ((bid_px as i128 + ask_px as i128) >> 1) as i64,
            (true, false) => bid_px,
            (false, true) => ask_px,
            (false, false) => return,
        };
        let s = &self.instruments[id];
        let ref_notional = ref_px as i128 * s.multiplier as i128;
        if ref_px == s.ref_px || ref_notional > self.ledgers[id].ref_notional_max {
            // Unchanged, or garbage (one quantity unit worth more than the notional bound allows).
            return;
        }
        self.instruments[id].set_reference(ref_px);
        self.ledgers[id].mark_px = ref_px;
        self.refresh_exposure(id);
        self.refresh_pnl(id);
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

/// Which of an order's ids a report carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Live,
    Pending(usize),
    Cancel,
}

impl Role {
    fn of(order: &OpenOrder, client_order_id: u64) -> Role {
        if let Some(k) = order
            .pending()
            .iter()
            .position(|p| p.client_order_id == client_order_id)
        {
            return Role::Pending(k);
        }
        if order.cancel_pending && order.cancel_client_order_id == client_order_id {
            return Role::Cancel;
        }
        Role::Live
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
