//! The report path: [`RiskEngine::on_execution`] and what each execution report does to the
//! open orders (acks, fills, replaces committed or dropped, cancels, removals), the positions
//! and costs fills change, and the best resting prices self-trade prevention keeps. Its own
//! file because it is the venue's side of the engine, apart from the checks on what we send.

use levibot_shm::records::{ExecutionReport, exec_type, side};

use super::orders::OpenOrder;
use super::{
    NO_BUY_PX, NO_SELL_PX, REPLACES_PENDING_MAX, RiskCheck, RiskEngine, TradingState, Trip,
};

impl RiskEngine {
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
    pub(super) fn fill(&mut self, slot: u16, last_qty: i64, last_px: i64, report_leaves: i64) {
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
    pub(super) fn commit_replace(&mut self, slot: u16, k: usize, leaves_qty: i64) -> bool {
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

    pub(super) fn remove_order(&mut self, slot: u16) {
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
    pub(super) fn recount(&mut self, slot: u16) {
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
    pub(super) fn rescan_best(&mut self, id: usize, order_side: u8) {
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
}

/// Which of an order's ids a report carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Live,
    Pending(usize),
    Cancel,
}

impl Role {
    pub(super) fn of(order: &OpenOrder, client_order_id: u64) -> Role {
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
