//! The accounting: each instrument's hot state ([`InstrumentRisk`]: limits a check reads,
//! worst-case quantities, exposure contributions) and cold ledger ([`Ledger`]: position, cost,
//! marks), the exposure totals and PnL kept from them, the loss trip, and the marks
//! ([`RiskEngine::on_market`]) that move the reference prices. Its own file because checks and
//! reports both feed it, and it holds the engine's numbers rather than its decisions.

use super::grid::GridDivisor;
use super::{
    BPS_ONE, INSTRUMENT_NOTIONAL_MAX, InstrumentLimits, NO_BUY_PX, NO_SELL_PX, Notional,
    RISK_INSTRUMENTS_MAX, RiskCheck, RiskEngine, TradingState, Trip, to_reject_units,
};

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
pub(super) struct InstrumentRisk {
    pub(super) tick: GridDivisor,
    pub(super) lot: GridDivisor,
    pub(super) qty_min: i64,
    /// `i64::MAX` when the filter has no maximum.
    pub(super) qty_max: i64,
    pub(super) price_min: i64,
    pub(super) price_max: i64,
    pub(super) order_qty_max: i64,
    pub(super) position_max: i64,
    pub(super) notional_min_px_qty: i128,
    pub(super) order_notional_max_px_qty: i128,
    pub(super) multiplier: i64,
    pub(super) collar_bps: i64,
    pub(super) open_orders_max: u32,
    pub(super) enabled: bool,

    /// Reference price (mid of the last top of book); 0: none yet.
    pub(super) ref_px: i64,
    pub(super) collar_low: i128,
    pub(super) collar_high: i128,
    pub(super) ref_notional: i128,

    pub(super) position: i64,
    pub(super) open_buy_qty: i64,
    pub(super) open_sell_qty: i64,
    /// Highest price of our open buys (live and pending replaces), `NO_BUY_PX` if none.
    pub(super) best_buy_px: i64,
    /// Lowest price of our open sells, `NO_SELL_PX` if none.
    pub(super) best_sell_px: i64,
    /// This instrument's part of the exposure totals.
    pub(super) gross: Notional,
    pub(super) long: Notional,
    pub(super) short: Notional,
}

const _: () = assert!(size_of::<InstrumentRisk>() <= 5 * 64);

impl InstrumentRisk {
    pub(super) const EMPTY: InstrumentRisk = InstrumentRisk {
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
    pub(super) fn load(&mut self, limits: &InstrumentLimits) {
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

    pub(super) fn set_reference(&mut self, ref_px: i64) {
        self.ref_px = ref_px;
        let r = ref_px as i128;
        self.collar_low = r * (BPS_ONE - self.collar_bps) as i128;
        self.collar_high = r * (BPS_ONE + self.collar_bps) as i128;
        self.ref_notional = r * self.multiplier as i128;
    }

    /// The worst-case contributions for these worst-case positions.
    #[inline(always)]
    pub(super) fn contributions(
        &self,
        worst_long: i64,
        worst_short: i64,
    ) -> (Notional, Notional, Notional) {
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
pub(super) struct Ledger {
    /// The largest `position_max_units` the instrument has had: no worst-case position exceeds
    /// it (limits only raise it; fills and reports only shrink worst cases).
    pub(super) qty_bound: i64,
    /// The largest `ref_notional` accepted: `INSTRUMENT_NOTIONAL_MAX / qty_bound`.
    pub(super) ref_notional_max: i128,
    /// PnL of closed quantity.
    pub(super) realised: i128,
    /// Entry cost of the open position, signed like it (average-cost accounting: a reduction
    /// takes its share of the cost).
    pub(super) open_cost: i128,
    /// Price the position is marked at: the reference, or the last fill before any.
    pub(super) mark_px: i64,
    /// `realised + position x mark - open_cost`, in [`Notional`] units: this instrument's part
    /// of the PnL total.
    pub(super) pnl: Notional,
}

impl Ledger {
    pub(super) const EMPTY: Ledger = Ledger {
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
    pub(super) fn raise_bound(&mut self, worst: i64) {
        if worst > self.qty_bound {
            self.qty_bound = worst;
            self.ref_notional_max = INSTRUMENT_NOTIONAL_MAX / worst as i128;
        }
    }
}

impl RiskEngine {
    /// The instrument's exposure contributions and the totals, from its position, open
    /// quantities and reference.
    pub(super) fn refresh_exposure(&mut self, id: usize) {
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
    pub(super) fn refresh_pnl(&mut self, id: usize) {
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

    pub(super) fn check_loss(&mut self) {
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

    pub(super) fn trip_to(&mut self, state: TradingState, trip: Trip) {
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
}
