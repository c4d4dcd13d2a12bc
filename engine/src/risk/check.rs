//! The check path: [`RiskEngine::check`] and every check it runs on a new order, a replace
//! and a cancel, in the order the module doc lists them, then the recording of a request that
//! passed (rate windows, recent orders, open orders) and the building of a reject. Its own file
//! because it is the hot path every order takes, apart from the reports and the accounting it
//! reads.

use levibot_shm::records::{OrderRequest, RiskReject, ord_type, order_kind, side, time_in_force};

use super::orders::{OpenOrder, PendingReplace};
use super::window::OrderKey;
use super::{
    BPS_ONE, Exposure, Notional, OPEN_ORDERS_MAX, REPLACES_PENDING_MAX, RISK_INSTRUMENTS_MAX,
    RiskCheck, RiskEngine, TradingState, invalid_field, saturate, stp_px, to_reject_units,
};

/// The approved order's effect, computed by the checks and applied if all pass.
#[derive(Clone, Copy)]
struct Approval {
    gross: Notional,
    long: Notional,
    short: Notional,
    totals: Exposure,
}

impl RiskEngine {
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
    pub(super) fn record_new(&mut self, o: &OrderRequest, id: usize, stp_px: i64) -> bool {
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
    pub(super) fn record_replace(&mut self, o: &OrderRequest, id: usize, slot: u16) {
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
    pub(super) fn record_cancel(&mut self, o: &OrderRequest, slot: u16) {
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
    pub(super) fn see_client_order_id(&mut self, strategy_id: u16, next: u64) {
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
}
