//! Reconciliation by order mass status: risk's open orders made equal to what the venue says
//! is working, after a restart rebuilt them from the journal.
//!
//! The caller halts trading, calls [`RiskEngine::begin_status_round`], then sends an
//! `order_kind::MASS_STATUS` request; the venue answers with one `exec_type::ORDER_STATUS`
//! report per working order, the last flagged `report_flag::LAST_OF_MASS_STATUS` (an answer
//! without orders is that one flagged report, naming no order). Each report reaches
//! [`on_execution`](RiskEngine::on_execution) as any other:
//!
//! - an order risk knows: if the venue's `cum_qty` is above what risk has seen filled, the
//!   difference is a fill (at the report's AvgPx, `last_px`, else the order's price) through
//!   the path a TRADE report takes, so that position, PnL, leaves and exposure move together;
//!   if the venue has less working than risk counts, risk takes the venue's leaves (an order
//!   with nothing left leaves the table, counted as dropped). The order is then seen.
//!   A report under a pending replace's id means the venue works the replacement (its
//!   REPLACED report was lost): the replace is committed first.
//! - an order risk does not know with leaves > 0: adopted as an open limit order of its
//!   working leaves, with the venue's `cum_qty` as already filled, so that it counts in the
//!   exposures and a cancel of it passes risk. Its earlier fills are not applied: whether they
//!   are in the position depends on whether the journal saw them, which risk cannot tell, and
//!   inventing fills would be worse than missing them. Orders risk cannot take in (an
//!   instrument without limits, a market order, a full table, a worst case beyond
//!   [`RESTORED_WORST_MAX`]) are counted as unaccounted: only a cancel-all reaches them.
//! - the last report: every open order the round has not seen is dropped (the venue does not
//!   work it: it never arrived, or ended while we were down and its report is lost) and the
//!   round ends.
//!
//! Known limits: AvgPx averages all of an order's fills, so a missed fill priced at it is
//! exact only when risk had seen none; an order that filled completely while we were down is
//! not in the answer (only working orders are), so its missed fills are not applied.
//! Fills applied here do not count in the repeated-execution throttle: they happened earlier.
//!
//! Cold (once per start) but called from `on_execution`: no allocation, fixed tables only.

use levibot_shm::records::{ExecutionReport, OrderRequest, ord_type, report_flag, side};

use super::{OPEN_ORDERS_MAX, QTY_UNITS_MAX, RISK_INSTRUMENTS_MAX, RiskEngine, Role};

/// Where status rounds are, and what they changed (totals over every round).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StatusRounds {
    open: bool,
    rounds: u64,
    adopted: u64,
    dropped: u64,
    fills_applied: u64,
    unaccounted: u64,
}

impl RiskEngine {
    /// Starts a status round: every open order now awaits the venue's status. The caller halts
    /// trading first (risk refuses nothing on its own here, and an order sent during the round
    /// would be neither seen nor dropped: only the orders open now are). A round already open
    /// starts again. Cold: walks the open-order table.
    #[cold]
    #[inline(never)]
    pub fn begin_status_round(&mut self) {
        self.orders.set_awaiting_status(true);
        self.status.open = true;
    }

    /// Gives up the open round (the venue did not answer in time): nothing is dropped, the
    /// adopted orders and applied fills stay. Cold.
    pub fn abandon_status_round(&mut self) {
        self.orders.set_awaiting_status(false);
        self.status.open = false;
    }

    /// Whether a status round is waiting for the venue's last report.
    pub fn status_round_open(&self) -> bool {
        self.status.open
    }

    /// Status rounds finished (by the venue's last report).
    pub fn status_rounds(&self) -> u64 {
        self.status.rounds
    }

    /// Orders only the venue had, taken in as open.
    pub fn status_adopted(&self) -> u64 {
        self.status.adopted
    }

    /// Open orders the venue does not work, removed.
    pub fn status_dropped(&self) -> u64 {
        self.status.dropped
    }

    /// Missed fills applied from the venue's cumulative quantities.
    pub fn status_fills_applied(&self) -> u64 {
        self.status.fills_applied
    }

    /// Orders the venue works that risk could not take in (see the module doc): a cancel-all
    /// is the only way to them.
    pub fn status_unaccounted(&self) -> u64 {
        self.status.unaccounted
    }

    /// An `ORDER_STATUS` report (see the module doc).
    #[cold]
    #[inline(never)]
    pub(super) fn on_order_status(&mut self, report: &ExecutionReport) {
        if !self.status.open {
            self.ignored_reports += 1;
            return;
        }
        // Client order id 0: the answer without orders (or an order not entered by us).
        if report.client_order_id != 0 {
            match self.orders.find(report.client_order_id) {
                Some(slot) => self.status_of_known(slot, report),
                None if report.leaves_qty > 0 => self.adopt(report),
                None => self.ignored_reports += 1,
            }
        } else if report.leaves_qty > 0 {
            self.status.unaccounted += 1;
        }
        if report.flags & report_flag::LAST_OF_MASS_STATUS != 0 {
            self.end_status_round();
        }
    }

    fn status_of_known(&mut self, slot: u16, report: &ExecutionReport) {
        let order = *self.orders.get(slot);
        if order.instrument_id != report.instrument_id
            || (report.side != 0 && report.side != order.side)
        {
            self.ignored_reports += 1;
            return;
        }
        if let Role::Pending(k) = Role::of(&order, report.client_order_id) {
            // The venue works the replacement: the REPLACED report was lost.
            if !self.commit_replace(slot, k, 0) {
                // Nothing of it is left open: it left the table.
                self.status.dropped += 1;
                return;
            }
        }
        self.orders.get_mut(slot).awaiting_status = false;
        let order = *self.orders.get(slot);
        let missed = report.cum_qty.saturating_sub(order.cum_qty);
        let px = if report.last_px > 0 {
            report.last_px
        } else if order.ord_type == ord_type::LIMIT {
            order.px
        } else {
            report.px
        };
        if missed > 0 && px > 0 {
            self.fill(slot, missed, px, report.leaves_qty);
            self.status.fills_applied += 1;
            return;
        }
        if missed > 0 {
            // A market order without AvgPx: no price to apply the fill at.
            self.ignored_reports += 1;
        }
        let leaves = order.leaves_qty.min(report.leaves_qty.max(0));
        if leaves == 0 {
            self.remove_order(slot);
            self.status.dropped += 1;
        } else if leaves < order.leaves_qty {
            self.orders.get_mut(slot).leaves_qty = leaves;
            self.recount(slot);
            self.refresh_exposure(order.instrument_id as usize);
        }
    }

    /// Takes in a working order risk does not know (its leaves, as `restore_order` takes in a
    /// new order, with the same bounds).
    fn adopt(&mut self, report: &ExecutionReport) {
        let id = report.instrument_id as usize;
        let leaves = report.leaves_qty;
        let buy = report.side == side::BUY;
        let takes = id < RISK_INSTRUMENTS_MAX
            && self.instruments[id].enabled
            && (buy || report.side == side::SELL)
            && report.px > 0
            && leaves <= QTY_UNITS_MAX;
        if !takes {
            self.status.unaccounted += 1;
            return;
        }
        if !self.admits_worst(id, self.worst_with(id, buy, leaves)) {
            self.status.unaccounted += 1;
            return;
        }
        // A limit order of its leaves at its price (the working price record_new takes): the
        // fields record_new reads, and no others.
        let request = OrderRequest {
            client_order_id: report.client_order_id,
            instrument_id: report.instrument_id,
            side: report.side,
            ord_type: ord_type::LIMIT,
            qty: leaves,
            ..OrderRequest::default()
        };
        if !self.record_new(&request, id, report.px) {
            self.status.unaccounted += 1;
            return;
        }
        if let Some(slot) = self.orders.find(report.client_order_id) {
            let o = self.orders.get_mut(slot);
            o.cum_qty = report.cum_qty.max(0);
            o.acked = true;
        }
        self.refresh_exposure(id);
        self.cover_worst_case(id);
        self.status.adopted += 1;
    }

    /// Drops every open order the round has not seen, and closes it.
    fn end_status_round(&mut self) {
        for slot in 0..OPEN_ORDERS_MAX as u16 {
            if self.orders.awaits_status(slot) {
                self.remove_order(slot);
                self.status.dropped += 1;
            }
        }
        self.status.open = false;
        self.status.rounds += 1;
    }
}
