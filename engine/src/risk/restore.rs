//! Restoring an engine's state after a restart (cold path: `daemon::recovery` replays the
//! journal through it). An order the journal says was sent is recorded exactly as
//! [`check`](RiskEngine::check) recorded it when it passed (the same `record_*` steps), without
//! running the checks: they held when it was sent, and the limits or the reference price may
//! have changed since. Rate windows and recent orders are left alone: the throttles bound what
//! this run sends. Execution reports are replayed with [`on_execution`](RiskEngine::on_execution)
//! (or [`replay_execution`](RiskEngine::replay_execution), which also says whether the fill
//! throttle counted a fill).
//!
//! **State checkpoints.** A replay's engine is also read out and restored whole, so that
//! recovery can start from a checkpoint instead of the journal's first frame: per instrument its
//! [`LedgerState`] (position, realised PnL, cost basis, mark), every open order as the table
//! holds it ([`OrderState`]: working order, pending replaces and cancel, fills so far), the
//! [`EngineState`] (trading state, pending trip, PnL total), the client-order-id marks and the
//! fill throttle's stamps. Restoring copies the values back into a fresh engine (in that order:
//! ledgers, orders, [`finish_state_restore`](RiskEngine::finish_state_restore), the rest) and
//! checks them as `restore_order` checks a request, so a corrupt checkpoint is an error, never
//! an engine whose sums are wrong. Nothing here is on the hot path.

use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side};

use super::orders::{OpenOrder, PendingReplace};
use super::{
    INSTRUMENT_NOTIONAL_MAX, Notional, OPEN_ORDERS_MAX, QTY_UNITS_MAX, REPLACES_PENDING_MAX,
    RISK_INSTRUMENTS_MAX, RiskCheck, RiskEngine, TradingState, Trip, stp_px,
};

/// The largest worst case (|position| plus a side's open quantity) a restore builds, in
/// quantity units. Live, `check` keeps every worst case within `position_max_units <=
/// QTY_UNITS_MAX`, so a journal of real orders stays below it even if the limits were lowered
/// since; beyond it a record is garbage, and the engine's sums would no longer be exact.
pub const RESTORED_WORST_MAX: i64 = 2 * QTY_UNITS_MAX;

/// Why an order could not be restored: the request, handed back, and the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "order {} (kind {}, instrument {}): {problem}",
    request.client_order_id,
    request.kind,
    request.instrument_id
)]
pub struct RestoreError {
    pub request: OrderRequest,
    pub problem: RestoreProblem,
}

/// What was wrong with a request [`RiskEngine::restore_order`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreProblem {
    /// `kind` is not one of `order_kind`.
    #[error("unknown order kind")]
    Kind,
    /// The instrument has no risk limits here.
    #[error("the instrument has no risk limits")]
    UnknownInstrument,
    /// Side, type, quantity or (limit) price make no sense (a corrupt record).
    #[error("invalid {0}")]
    InvalidField(&'static str),
    /// The request's own id already names an open order (or one of its pending requests).
    #[error("its client order id is already open")]
    DuplicateClientOrderId,
    /// The replace's or cancel's target is not open (of this instrument): it left the table
    /// (filled, cancelled, refused) before the request was restored.
    #[error("its target {target} is not open")]
    TargetGone { target: u64 },
    /// The replace's target has another instrument or side, or is a market order.
    #[error("its target {target} has another instrument or side, or is a market order")]
    TargetMismatch { target: u64 },
    /// The target already has [`REPLACES_PENDING_MAX`] replaces pending.
    #[error("its target {target} already has {REPLACES_PENDING_MAX} replaces pending")]
    ReplacesPending { target: u64 },
    /// The instrument's worst case would go beyond [`RESTORED_WORST_MAX`] (or beyond what its
    /// reference price allows: see `RiskEngine::on_market`).
    #[error("the worst case would reach {worst} units, beyond {RESTORED_WORST_MAX}")]
    WorstCase { worst: i64 },
    /// The open-order table holds [`OPEN_ORDERS_MAX`] orders.
    #[error("the open-order table is full ({OPEN_ORDERS_MAX} orders)")]
    TableFull,
}

impl RiskEngine {
    /// Records `order`, which passed risk in an earlier run, as [`check`](Self::check)
    /// recorded it then: a new order as open, a replace as pending on its target, a cancel as
    /// pending on its target; a mass cancel records nothing; a mass status begins a status
    /// round (whose replayed answers then reconcile as they did). No check runs and neither the
    /// rate windows nor the recent orders change. The client order id of a new order, replace
    /// or cancel counts as seen for its strategy (as in `check`), whatever the outcome; on error
    /// nothing else changes.
    ///
    /// Cold path (recovery), not for the hot path: the exposure is recomputed rather than
    /// taken from a check.
    pub fn restore_order(&mut self, order: &OrderRequest) -> Result<(), RestoreError> {
        let o = order;
        let refuse = |problem| {
            Err(RestoreError {
                request: *order,
                problem,
            })
        };
        let kind = o.kind;
        if kind == order_kind::MASS_CANCEL {
            // `check` passes it without looking at its id.
            return Ok(());
        }
        if kind == order_kind::MASS_STATUS {
            // As `check`: the round opens before any answer, which replays after it.
            self.begin_status_round();
            return Ok(());
        }
        if !matches!(
            kind,
            order_kind::NEW | order_kind::REPLACE | order_kind::CANCEL
        ) {
            return refuse(RestoreProblem::Kind);
        }
        self.see_client_order_id(o.strategy_id, o.client_order_id.saturating_add(1));
        let id = o.instrument_id as usize;
        if id >= RISK_INSTRUMENTS_MAX || !self.instruments[id].enabled {
            return refuse(RestoreProblem::UnknownInstrument);
        }
        if self.orders.find(o.client_order_id).is_some() {
            return refuse(RestoreProblem::DuplicateClientOrderId);
        }
        if kind != order_kind::CANCEL {
            if let Some(field) = invalid_field(o) {
                return refuse(RestoreProblem::InvalidField(field));
            }
            // At most what the order adds to its side (a replace adds less).
            let worst = self.worst_with(id, o.side == side::BUY, o.qty);
            if o.qty > QTY_UNITS_MAX || !self.admits_worst(id, worst) {
                return refuse(RestoreProblem::WorstCase { worst });
            }
        }
        let target = o.orig_client_order_id;
        match kind {
            order_kind::NEW => {
                let market = o.ord_type == ord_type::MARKET;
                let stp_px = stp_px(market, o.side == side::BUY, o.px);
                if !self.record_new(o, id, stp_px) {
                    return refuse(RestoreProblem::TableFull);
                }
                self.refresh_exposure(id);
            }
            order_kind::REPLACE => {
                let Some(slot) = self.orders.find(target) else {
                    return refuse(RestoreProblem::TargetGone { target });
                };
                let t = *self.orders.get(slot);
                if t.instrument_id != o.instrument_id
                    || t.side != o.side
                    || t.ord_type != ord_type::LIMIT
                    || o.ord_type != ord_type::LIMIT
                {
                    return refuse(RestoreProblem::TargetMismatch { target });
                }
                if t.pending_len as usize >= REPLACES_PENDING_MAX {
                    return refuse(RestoreProblem::ReplacesPending { target });
                }
                // No test of what the replacement leaves open (`qty - cum_qty`): the target may
                // have filled further since the check; the venue's answer settles it, as live.
                self.record_replace(o, id, slot);
            }
            _ => {
                let slot = match self.orders.find(target) {
                    Some(slot) if self.orders.get(slot).instrument_id == o.instrument_id => slot,
                    _ => return refuse(RestoreProblem::TargetGone { target }),
                };
                self.record_cancel(o, slot);
            }
        }
        self.cover_worst_case(id);
        Ok(())
    }

    /// Keeps the ledger's invariant that no worst case exceeds its `qty_bound` (the limits may
    /// have been lowered since the orders were sent): the bound, and the reference prices it
    /// allows, follow the restored (or adopted) worst case.
    pub(super) fn cover_worst_case(&mut self, id: usize) {
        let worst = self.worst_case(id as u32);
        self.ledgers[id].raise_bound(worst);
    }

    /// An upper bound of the worst case of instrument `id` with `qty` more open on one side:
    /// |position| plus that side's open quantity plus `qty` (saturating).
    pub(super) fn worst_with(&self, id: usize, buy: bool, qty: i64) -> i64 {
        let s = &self.instruments[id];
        let open = if buy { s.open_buy_qty } else { s.open_sell_qty };
        s.position
            .saturating_abs()
            .saturating_add(open)
            .saturating_add(qty)
    }

    /// Whether instrument `id` may take a worst case of `worst` from a restored or adopted
    /// order: at most [`RESTORED_WORST_MAX`], and small enough that the reference price in
    /// force keeps its notional within `INSTRUMENT_NOTIONAL_MAX`.
    pub(super) fn admits_worst(&self, id: usize, worst: i64) -> bool {
        let bound = self.ledgers[id].qty_bound.max(worst) as i128;
        worst <= RESTORED_WORST_MAX
            && self.instruments[id].ref_notional <= INSTRUMENT_NOTIONAL_MAX / bound
    }

    /// Raises the lowest client order id not yet seen of `strategy_id` to at least `next`, so
    /// that no id an earlier run used passes again. Never lowers it.
    pub fn restore_next_client_order_id(&mut self, strategy_id: u16, next: u64) {
        self.see_client_order_id(strategy_id, next);
    }

    /// The lowest client order id not yet seen of `strategy_id` (ids below it are duplicates).
    pub fn next_client_order_id(&self, strategy_id: u16) -> u64 {
        self.next_client_order_id[strategy_id as usize]
    }

    /// The instrument's worst case, `max(position + open buys, -(position - open sells))` (0
    /// for an unknown instrument): what restores keep within the ledger's bound.
    pub fn worst_case(&self, instrument_id: u32) -> i64 {
        let Some(s) = self.instrument(instrument_id) else {
            return 0;
        };
        let worst_long = s.position.saturating_add(s.open_buy_qty);
        let worst_short = s.position.saturating_sub(s.open_sell_qty);
        worst_long.max(worst_short.saturating_neg())
    }

    /// The largest worst case the instrument's ledger admits (0 for an unknown instrument): its
    /// largest position limit, raised by restored or adopted orders that built more. A replay
    /// that sees it rise knows what a checkpoint must carry (see
    /// [`restore_ledger`](Self::restore_ledger)).
    pub fn worst_case_bound(&self, instrument_id: u32) -> i64 {
        self.ledger(instrument_id).map_or(0, |l| l.qty_bound)
    }

    /// [`on_execution`](Self::on_execution) for a replay: also says whether the fill throttle
    /// counted the report as a fill at `now_ns` (a checkpoint carries those stamps, which the
    /// engine does not hand out). That is a `TRADE` the engine did not ignore: every such fill
    /// is recorded in the throttle's window, and only those.
    pub fn replay_execution(&mut self, report: &ExecutionReport, now_ns: u64) -> bool {
        let ignored = self.ignored_reports;
        self.on_execution(report, now_ns);
        report.exec_type == exec_type::TRADE && self.ignored_reports == ignored
    }
}

/// One instrument's position and money as the engine keeps them (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerState {
    /// Quantity units.
    pub position: i64,
    /// Open buy and sell quantity as the worst case counts them: what the instrument's open
    /// orders add up to (restoring the orders gives them back; a check).
    pub open_buy_qty: i64,
    pub open_sell_qty: i64,
    /// PnL of closed quantity, in the instrument's `px x qty` units.
    pub realised: i128,
    /// Entry cost of the open position in `px x qty` units, signed like it.
    pub open_cost: i128,
    /// Price the position is marked at (the reference, or the last fill before any).
    pub mark_px: i64,
    /// This instrument's part of the PnL total.
    pub pnl: Notional,
}

/// A replace awaiting the venue, in an [`OrderState`]: the order's new total quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaceState {
    pub client_order_id: u64,
    pub px: i64,
    pub qty: i64,
}

/// One open order as the open-order table holds it (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderState {
    /// The working order's id.
    pub client_order_id: u64,
    pub instrument_id: u32,
    pub side: u8,
    pub ord_type: u8,
    /// As the table holds it: a market order's is its side's crossing sentinel.
    pub px: i64,
    pub leaves_qty: i64,
    pub cum_qty: i64,
    /// What the worst case counts for it (follows from the rest: a check).
    pub counted_qty: i64,
    /// Oldest first; `pending_len` of them are used.
    pub pending: [ReplaceState; REPLACES_PENDING_MAX],
    pub pending_len: u8,
    /// The pending cancel's id.
    pub cancel_client_order_id: Option<u64>,
    pub acked: bool,
    /// Open when the status round began and not yet reported on in it.
    pub awaiting_status: bool,
}

/// A trip not yet reported on a refused order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripState {
    pub check: RiskCheck,
    pub limit: i64,
    pub value: i64,
}

/// What an engine holds besides its ledgers, orders, marks and fill stamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineState {
    pub trading_state: TradingState,
    pub trip: Option<TripState>,
    pub pnl_total: Notional,
    pub ignored_reports: u64,
    /// A status round awaits the venue's last report.
    pub status_round_open: bool,
}

/// Why a state could not be restored (a corrupt checkpoint, or limits without the instrument).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateProblem {
    /// The instrument has state and no risk limits here.
    #[error("instrument {0} has state but no risk limits")]
    UnknownInstrument(u32),
    /// A ledger value that no engine could hold.
    #[error("instrument {instrument_id}: invalid {field}")]
    Ledger {
        instrument_id: u32,
        field: &'static str,
    },
    #[error("open order {client_order_id}: {problem}")]
    Order {
        client_order_id: u64,
        problem: RestoreProblem,
    },
}

impl RiskEngine {
    /// The ledger of an instrument with risk limits (`None` otherwise).
    pub fn ledger_state(&self, instrument_id: u32) -> Option<LedgerState> {
        let s = self.instrument(instrument_id)?;
        let ledger = self.ledgers[instrument_id as usize];
        Some(LedgerState {
            position: s.position,
            open_buy_qty: s.open_buy_qty,
            open_sell_qty: s.open_sell_qty,
            realised: ledger.realised,
            open_cost: ledger.open_cost,
            mark_px: ledger.mark_px,
            pnl: ledger.pnl,
        })
    }

    /// Every open order as the table holds it, by instrument.
    pub fn order_states(&self) -> impl Iterator<Item = OrderState> + '_ {
        self.orders.all().map(|o| {
            let mut pending = [ReplaceState::default(); REPLACES_PENDING_MAX];
            for (to, from) in pending.iter_mut().zip(o.pending()) {
                *to = ReplaceState {
                    client_order_id: from.client_order_id,
                    px: from.px,
                    qty: from.qty,
                };
            }
            OrderState {
                client_order_id: o.client_order_id,
                instrument_id: o.instrument_id,
                side: o.side,
                ord_type: o.ord_type,
                px: o.px,
                leaves_qty: o.leaves_qty,
                cum_qty: o.cum_qty,
                counted_qty: o.counted_qty,
                pending,
                pending_len: o.pending_len,
                cancel_client_order_id: o.cancel_pending.then_some(o.cancel_client_order_id),
                acked: o.acked,
                awaiting_status: o.awaiting_status,
            }
        })
    }

    pub fn engine_state(&self) -> EngineState {
        EngineState {
            trading_state: self.state,
            trip: self.trip.map(|t| TripState {
                check: t.check,
                limit: t.limit,
                value: t.value,
            }),
            pnl_total: self.pnl_total,
            ignored_reports: self.ignored_reports,
            status_round_open: self.status_round_open(),
        }
    }

    /// Every strategy's client-order-id mark that is not 0, by strategy id (a walk over all
    /// `RISK_STRATEGIES_MAX` of them).
    pub fn client_order_id_marks(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.next_client_order_id
            .iter()
            .enumerate()
            .filter(|&(_, &next)| next != 0)
            .map(|(strategy_id, &next)| (strategy_id as u16, next))
    }

    /// Restores an instrument's ledger into a fresh engine, before its orders; `worst_max` is
    /// the largest [`worst_case_bound`](Self::worst_case_bound) that restored or adopted orders
    /// raised it to (the limits' part of the bound is today's limits'). Open quantities come
    /// from the orders. An instrument without limits may only have an empty ledger.
    pub fn restore_ledger(
        &mut self,
        instrument_id: u32,
        state: &LedgerState,
        worst_max: i64,
    ) -> Result<(), StateProblem> {
        if self.instrument(instrument_id).is_none() {
            let empty = LedgerState {
                open_buy_qty: state.open_buy_qty,
                open_sell_qty: state.open_sell_qty,
                ..LedgerState::default()
            };
            return if *state == empty && worst_max == 0 {
                Ok(())
            } else {
                Err(StateProblem::UnknownInstrument(instrument_id))
            };
        }
        let invalid = |field| {
            Err(StateProblem::Ledger {
                instrument_id,
                field,
            })
        };
        if state
            .position
            .checked_abs()
            .is_none_or(|p| p > RESTORED_WORST_MAX)
        {
            return invalid("position");
        }
        if state.mark_px < 0 {
            return invalid("mark_px");
        }
        if !(0..=RESTORED_WORST_MAX).contains(&worst_max) {
            return invalid("worst_max");
        }
        let id = instrument_id as usize;
        self.instruments[id].position = state.position;
        let ledger = &mut self.ledgers[id];
        ledger.realised = state.realised;
        ledger.open_cost = state.open_cost;
        ledger.mark_px = state.mark_px;
        ledger.pnl = state.pnl;
        ledger.raise_bound(worst_max);
        Ok(())
    }

    /// Restores an open order into the table, after its instrument's ledger, exactly as it was
    /// held: working order, pending replaces and cancel, fills, acknowledgement. Checked as
    /// [`restore_order`](Self::restore_order) checks a request, and against itself (its counted
    /// quantity must follow from the rest); on error nothing changes.
    pub fn restore_open_order(&mut self, o: &OrderState) -> Result<(), StateProblem> {
        let refuse = |problem| {
            Err(StateProblem::Order {
                client_order_id: o.client_order_id,
                problem,
            })
        };
        let id = o.instrument_id as usize;
        if self.instrument(o.instrument_id).is_none() {
            return refuse(RestoreProblem::UnknownInstrument);
        }
        let buy = o.side == side::BUY;
        let market = o.ord_type == ord_type::MARKET;
        let pending = o.pending.get(..o.pending_len as usize);
        let qty_ok = |q: i64| q > 0 && q <= RESTORED_WORST_MAX;
        let field = if !buy && o.side != side::SELL {
            Some("side")
        } else if !market && o.ord_type != ord_type::LIMIT {
            Some("ord_type")
        } else if (market && o.px != stp_px(true, buy, 0)) || (!market && o.px <= 0) {
            Some("px")
        } else if !qty_ok(o.leaves_qty) {
            Some("leaves_qty")
        } else if !(0..=RESTORED_WORST_MAX).contains(&o.cum_qty) {
            Some("cum_qty")
        } else if pending.is_none_or(|p| market && !p.is_empty()) {
            Some("pending_len")
        } else if pending.is_some_and(|p| p.iter().any(|r| r.px <= 0 || !qty_ok(r.qty))) {
            Some("pending")
        } else {
            None
        };
        if let Some(field) = field {
            return refuse(RestoreProblem::InvalidField(field));
        }
        let pending = pending.unwrap_or_default();
        let mut order = OpenOrder::new(
            o.client_order_id,
            o.instrument_id,
            o.side,
            o.ord_type,
            o.px,
            o.leaves_qty,
        );
        order.cum_qty = o.cum_qty;
        order.acked = o.acked;
        order.awaiting_status = o.awaiting_status;
        order.pending_len = o.pending_len;
        for (to, from) in order.pending.iter_mut().zip(pending) {
            *to = PendingReplace {
                client_order_id: from.client_order_id,
                px: from.px,
                qty: from.qty,
            };
        }
        if order.worst_qty() != o.counted_qty {
            return refuse(RestoreProblem::InvalidField("counted_qty"));
        }
        order.counted_qty = o.counted_qty;
        order.cancel_pending = o.cancel_client_order_id.is_some();
        order.cancel_client_order_id = o.cancel_client_order_id.unwrap_or(0);
        // Every id of the order finds it: none may be taken, by another order or by itself.
        let ids = std::iter::once(o.client_order_id)
            .chain(pending.iter().map(|p| p.client_order_id))
            .chain(o.cancel_client_order_id);
        for (k, one) in ids.clone().enumerate() {
            let repeated = ids.clone().skip(k + 1).any(|other| other == one);
            if repeated || self.orders.find(one).is_some() {
                return refuse(RestoreProblem::DuplicateClientOrderId);
            }
        }
        let worst = self.worst_with(id, buy, o.counted_qty);
        if worst > RESTORED_WORST_MAX {
            return refuse(RestoreProblem::WorstCase { worst });
        }
        let Some(slot) = self.orders.insert(order) else {
            return refuse(RestoreProblem::TableFull);
        };
        for p in pending {
            self.orders.index_insert(p.client_order_id, slot);
        }
        if let Some(cancel) = o.cancel_client_order_id {
            self.orders.index_insert(cancel, slot);
        }
        let s = &mut self.instruments[id];
        if buy {
            s.open_buy_qty += o.counted_qty;
        } else {
            s.open_sell_qty += o.counted_qty;
        }
        Ok(())
    }

    /// After the ledgers and orders: every instrument's best resting prices and exposure, from
    /// them.
    pub fn finish_state_restore(&mut self) {
        for id in 0..RISK_INSTRUMENTS_MAX {
            if self.instruments[id].enabled {
                self.rescan_best(id, side::BUY);
                self.rescan_best(id, side::SELL);
                self.refresh_exposure(id);
            }
        }
    }

    /// Records the fill throttle's remembered stamps, oldest first, into a fresh engine (what
    /// [`replay_execution`](Self::replay_execution) reported; the last `RATE_WINDOW_MAX` are
    /// all the throttle ever looks at).
    pub fn restore_fill_stamps(&mut self, stamps_ns: &[u64]) {
        for &stamp in stamps_ns {
            self.fill_window.record(stamp);
        }
    }

    /// Restores the trading state, the pending trip, the PnL total (the ledgers' `pnl` summed
    /// as the engine summed them), the ignored-report count and an open status round (after the
    /// orders: each keeps the status flag it was restored with). No trip is checked: the state
    /// is the one the engine had. The status rounds' totals (`status_rounds` ..
    /// `status_unaccounted`) are not restored: they count this engine's rounds.
    pub fn restore_engine_state(&mut self, state: &EngineState) {
        if state.status_round_open && !self.status_round_open() {
            let awaiting: Vec<(u64, bool)> = self
                .orders
                .all()
                .map(|o| (o.client_order_id, o.awaiting_status))
                .collect();
            self.begin_status_round();
            for (client_order_id, flag) in awaiting {
                if let Some(slot) = self.orders.find(client_order_id) {
                    self.orders.get_mut(slot).awaiting_status = flag;
                }
            }
        }
        self.state = state.trading_state;
        self.trip = state.trip.map(|t| Trip {
            check: t.check,
            limit: t.limit,
            value: t.value,
        });
        self.pnl_total = state.pnl_total;
        self.ignored_reports = state.ignored_reports;
    }
}

/// The first field of a new order or replace that cannot be what `check` let through.
fn invalid_field(o: &OrderRequest) -> Option<&'static str> {
    let limit = o.ord_type == ord_type::LIMIT;
    if o.side != side::BUY && o.side != side::SELL {
        Some("side")
    } else if !limit && o.ord_type != ord_type::MARKET {
        Some("ord_type")
    } else if o.qty <= 0 {
        Some("qty")
    } else if limit && o.px <= 0 {
        Some("px")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use levibot_gateway::decimal::Scale;
    use levibot_gateway::instrument::Symbol;
    use levibot_shm::records::{ExecutionReport, exec_type, report_flag, time_in_force};

    use super::*;
    use crate::risk::limits::{RateLimit, quote};
    use crate::risk::{InstrumentLimits, OpenOrderInfo, RiskLimits, TradingState};

    const STEP_NS: u64 = 2_000_000;

    /// Prices in cents, quantities in thousandths (as `tests/risk.rs`), two instruments.
    fn limits() -> RiskLimits {
        let instrument = |symbol: &str| InstrumentLimits {
            symbol: Symbol::from_ascii(symbol.as_bytes()).unwrap(),
            quote_asset: Symbol::from_ascii(b"USDT").unwrap(),
            price_scale: Scale {
                mantissa: 1,
                exp: 2,
            },
            qty_scale: Scale {
                mantissa: 1,
                exp: 3,
            },
            tick_units: 5,
            lot_units: 10,
            price_min_units: 100,
            price_max_units: 1_000_000,
            qty_min_units: 10,
            qty_max_units: 100_000,
            notional_min: quote(1) / 100,
            collar_bps: 100,
            order_qty_max_units: 10_000,
            order_notional_max: quote(1_000),
            position_max_units: 20_000,
            open_orders_max: 8,
        };
        let mut l = RiskLimits::default();
        l.instruments[0] = Some(instrument("AAAUSDT"));
        l.instruments[1] = Some(instrument("BBBUSDT"));
        l.open_orders_max = 12;
        l.gross_exposure_max = quote(3_000);
        l.net_exposure_max = quote(2_500);
        l.loss_max = quote(100_000);
        l.loss_state = TradingState::Halted;
        let rate = RateLimit {
            count_max: 1_000,
            window_ns: 1_000_000_000,
        };
        (l.order_rate, l.message_rate, l.fill_rate) = (rate, rate, rate);
        l.duplicate_window_ns = 1_000_000;
        l
    }

    /// A new limit buy of instrument 0.
    fn limit_buy(client_order_id: u64, px: i64, qty: i64) -> OrderRequest {
        OrderRequest {
            client_order_id,
            kind: order_kind::NEW,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            px,
            qty,
            ..OrderRequest::default()
        }
    }

    fn engine() -> RiskEngine {
        let mut risk = RiskEngine::new(limits()).unwrap();
        risk.on_market(0, 9_990, 10_010);
        risk.on_market(1, 9_990, 10_010);
        risk
    }

    fn open_orders(risk: &RiskEngine) -> Vec<OpenOrderInfo> {
        let mut orders: Vec<OpenOrderInfo> = risk
            .open_order_ids()
            .filter_map(|id| risk.open_order(id))
            .collect();
        orders.sort_by_key(|o| o.client_order_id);
        orders
    }

    /// Everything `check` leaves behind that a restore must leave too.
    fn assert_same(live: &RiskEngine, restored: &RiskEngine, seed: u64) {
        assert_eq!(open_orders(live), open_orders(restored), "seed {seed}");
        for id in 0..2 {
            assert_eq!(live.open_qty(id), restored.open_qty(id), "seed {seed}");
            assert_eq!(live.position(id), restored.position(id), "seed {seed}");
            assert_eq!(
                live.realised_pnl(id),
                restored.realised_pnl(id),
                "seed {seed}"
            );
        }
        assert_eq!(live.exposure(), restored.exposure(), "seed {seed}");
        assert_eq!(
            live.next_client_order_id(1),
            restored.next_client_order_id(1),
            "seed {seed}"
        );
    }

    /// Random new orders, replaces and cancels through `check`, and random venue answers; every
    /// request that passed is restored into a second engine and every report replayed into it,
    /// in the same order: both hold the same open orders, quantities, exposure and ids.
    #[test]
    fn restored_orders_are_recorded_as_check_recorded_them() {
        let seed = levibot_testkit::seed();
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut live = engine();
        let mut restored = engine();
        let mut now_ns = 1_000_000_000;
        let mut next_id = 1;
        // Passed, by kind.
        let mut passed = [0u32; 5];
        for _ in 0..20_000 {
            now_ns += STEP_NS;
            let open: Vec<OpenOrderInfo> = open_orders(&live);
            let instrument_id = rng.u32(0..2);
            let order_side = if rng.bool() { side::BUY } else { side::SELL };
            let px = 10_000 + rng.i64(-15..=15) * 5;
            let qty = rng.i64(1..=40) * 10;
            let mut o = OrderRequest {
                client_order_id: next_id,
                instrument_id,
                strategy_id: 1,
                kind: order_kind::NEW,
                side: order_side,
                ord_type: ord_type::LIMIT,
                time_in_force: time_in_force::GTC,
                px,
                qty,
                ..OrderRequest::default()
            };
            next_id += 1;
            match rng.u8(0..10) {
                0 => {
                    o.ord_type = ord_type::MARKET;
                    o.time_in_force = time_in_force::IOC;
                    o.px = 0;
                }
                1..=3 => {}
                4..=6 if !open.is_empty() => {
                    let t = open[rng.usize(..open.len())];
                    o.kind = order_kind::REPLACE;
                    o.orig_client_order_id = t.client_order_id;
                    (o.instrument_id, o.side) = (t.instrument_id, t.side);
                    o.qty = t.cum_qty + qty;
                }
                7 if !open.is_empty() => {
                    let t = open[rng.usize(..open.len())];
                    o.kind = order_kind::CANCEL;
                    o.orig_client_order_id = t.client_order_id;
                    o.instrument_id = t.instrument_id;
                }
                8 => o.kind = order_kind::MASS_CANCEL,
                _ => {
                    // A venue answer to a random open order.
                    next_id -= 1;
                    let Some(t) = (!open.is_empty()).then(|| open[rng.usize(..open.len())]) else {
                        continue;
                    };
                    let mut report = ExecutionReport {
                        client_order_id: t.client_order_id,
                        instrument_id: t.instrument_id,
                        side: t.side,
                        px: t.px,
                        ..ExecutionReport::default()
                    };
                    report.exec_type = match rng.u8(0..5) {
                        0 => exec_type::NEW,
                        1 | 2 => {
                            report.last_qty =
                                (rng.i64(1..=t.leaves_qty.max(10) / 10) * 10).min(t.leaves_qty);
                            report.last_px = t.px.max(1);
                            report.leaves_qty = t.leaves_qty - report.last_qty;
                            exec_type::TRADE
                        }
                        3 => exec_type::CANCELED,
                        _ => {
                            if let Some(info) = live.open_order(t.client_order_id)
                                && info.replaces_pending > 0
                            {
                                report.leaves_qty = 0;
                                exec_type::REPLACED
                            } else {
                                exec_type::REJECTED
                            }
                        }
                    };
                    live.on_execution(&report, now_ns);
                    restored.on_execution(&report, now_ns);
                    continue;
                }
            }
            if live.check(&o, now_ns).is_ok() {
                passed[o.kind as usize] += 1;
                restored
                    .restore_order(&o)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            } else {
                // Refused requests still count as seen.
                restored.restore_next_client_order_id(o.strategy_id, o.client_order_id + 1);
            }
            assert_same(&live, &restored, seed);
        }
        let [_, new, cancel, replace, mass_cancel] = passed;
        assert!(
            new > 300 && cancel > 100 && replace > 100 && mass_cancel > 100,
            "seed {seed}: too few passed: {passed:?}"
        );
    }

    #[test]
    fn a_restore_refuses_what_check_never_let_through_and_changes_nothing() {
        let mut risk = engine();
        let new = OrderRequest {
            client_order_id: 7,
            strategy_id: 3,
            kind: order_kind::NEW,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            time_in_force: time_in_force::GTC,
            px: 10_000,
            qty: 100,
            ..OrderRequest::default()
        };
        risk.restore_order(&new).unwrap();
        let problem = |risk: &mut RiskEngine, o: OrderRequest| {
            let before = (open_orders(risk), risk.exposure());
            let e = risk.restore_order(&o).unwrap_err();
            assert_eq!(e.request, o);
            assert_eq!((open_orders(risk), risk.exposure()), before, "{e}");
            e.problem
        };
        assert_eq!(
            problem(&mut risk, new),
            RestoreProblem::DuplicateClientOrderId
        );
        let other = |id: u64| OrderRequest {
            client_order_id: id,
            ..new
        };
        assert_eq!(
            problem(
                &mut risk,
                OrderRequest {
                    instrument_id: 5,
                    ..other(8)
                }
            ),
            RestoreProblem::UnknownInstrument
        );
        assert_eq!(
            problem(&mut risk, OrderRequest { qty: 0, ..other(9) }),
            RestoreProblem::InvalidField("qty")
        );
        assert_eq!(
            problem(
                &mut risk,
                OrderRequest {
                    kind: 9,
                    ..other(10)
                }
            ),
            RestoreProblem::Kind
        );
        let replace = |id: u64, target: u64| OrderRequest {
            kind: order_kind::REPLACE,
            orig_client_order_id: target,
            ..other(id)
        };
        assert_eq!(
            problem(&mut risk, replace(11, 99)),
            RestoreProblem::TargetGone { target: 99 }
        );
        // Only a limit order of the same side replaces a limit order: another side, a market
        // replace, or (below) a replace of a market order was never sent.
        for mismatch in [
            OrderRequest {
                side: side::SELL,
                ..replace(12, 7)
            },
            OrderRequest {
                ord_type: ord_type::MARKET,
                ..replace(13, 7)
            },
        ] {
            assert_eq!(
                problem(&mut risk, mismatch),
                RestoreProblem::TargetMismatch { target: 7 }
            );
        }
        risk.restore_order(&OrderRequest {
            ord_type: ord_type::MARKET,
            px: 0,
            ..other(14)
        })
        .unwrap();
        assert_eq!(
            problem(&mut risk, replace(15, 14)),
            RestoreProblem::TargetMismatch { target: 14 }
        );
        for k in 0..REPLACES_PENDING_MAX as u64 {
            risk.restore_order(&replace(20 + k, 7)).unwrap();
        }
        assert_eq!(
            problem(&mut risk, replace(30, 7)),
            RestoreProblem::ReplacesPending { target: 7 }
        );
        let cancel = OrderRequest {
            kind: order_kind::CANCEL,
            orig_client_order_id: 7,
            instrument_id: 1,
            ..other(31)
        };
        assert_eq!(
            problem(&mut risk, cancel),
            RestoreProblem::TargetGone { target: 7 }
        );
        // Every id counted as seen, refused or not (but an unknown kind's, as in `check`); the
        // mark never goes down.
        assert_eq!(risk.next_client_order_id(3), 32);
        risk.restore_next_client_order_id(3, 5);
        assert_eq!(risk.next_client_order_id(3), 32);
        assert_eq!(risk.next_client_order_id(4), 0);
    }

    #[test]
    fn orders_beyond_lowered_limits_are_restored_and_garbage_quantities_are_not() {
        // Sent under a position limit of 20.000; the limits now allow 10.000.
        let mut l = limits();
        l.instruments[0].as_mut().unwrap().position_max_units = 10_000;
        let mut risk = RiskEngine::new(l).unwrap();
        let buy = |id: u64, qty: i64| limit_buy(id, 10_000, qty);
        for id in 1..=3 {
            risk.restore_order(&buy(id, 6_000)).unwrap();
        }
        assert_eq!(risk.open_qty(0), (18_000, 0));
        // The reference is taken, and the exposure counts all of it.
        risk.on_market(0, 9_990, 10_010);
        assert_eq!(risk.reference_px(0), Some(10_000));
        assert!(risk.exposure().gross > 0);
        // A new order is checked against today's limits.
        let o = OrderRequest {
            client_order_id: 4,
            time_in_force: time_in_force::GTC,
            ..buy(4, 10)
        };
        let reject = risk.check(&o, 1_000_000_000).unwrap_err();
        assert_eq!(reject.check, crate::risk::RiskCheck::PositionMax.code());
        // Garbage quantities: one beyond any limit, or a worst case beyond twice that.
        let mut risk = RiskEngine::new(limits()).unwrap();
        let e = risk.restore_order(&buy(5, QTY_UNITS_MAX + 1)).unwrap_err();
        assert!(matches!(e.problem, RestoreProblem::WorstCase { .. }), "{e}");
        for id in 6..8 {
            risk.restore_order(&buy(id, QTY_UNITS_MAX)).unwrap();
        }
        let e = risk.restore_order(&buy(8, 10)).unwrap_err();
        assert_eq!(
            e.problem,
            RestoreProblem::WorstCase {
                worst: RESTORED_WORST_MAX + 10
            }
        );
        // A quantity the reference price in force could not be worth.
        let mut risk = RiskEngine::new(limits()).unwrap();
        risk.on_market(0, 1_000_000_000_000, 1_000_000_000_000);
        assert_eq!(risk.reference_px(0), Some(1_000_000_000_000));
        let e = risk.restore_order(&buy(9, 1 << 50)).unwrap_err();
        assert!(matches!(e.problem, RestoreProblem::WorstCase { .. }), "{e}");
        assert_eq!(risk.open_orders(), 0);
    }

    #[test]
    fn restored_worst_cases_raise_the_bound_and_lower_the_reference_prices_allowed() {
        // Sent under a position limit of 20.000; the limits now allow 10.000, so the bound is
        // 10.000 until the restored orders build more.
        let mut l = limits();
        l.instruments[0].as_mut().unwrap().position_max_units = 10_000;
        let multiplier = l.instruments[0].unwrap().notional_multiplier().unwrap() as i128;
        let mut risk = RiskEngine::new(l).unwrap();
        assert_eq!(risk.worst_case_bound(0), 10_000);
        let buy = |id: u64, qty: i64| limit_buy(id, 10_000, qty);
        risk.restore_order(&buy(1, 6_000)).unwrap();
        assert_eq!(
            (risk.worst_case(0), risk.worst_case_bound(0)),
            (6_000, 10_000)
        );
        risk.restore_order(&buy(2, 6_000)).unwrap();
        risk.restore_order(&buy(3, 6_000)).unwrap();
        assert_eq!(
            (risk.worst_case(0), risk.worst_case_bound(0)),
            (18_000, 18_000)
        );
        // The highest reference price whose notional times 18.000 stays within the bound is
        // taken; one unit above it is garbage, and ignored.
        let highest = (INSTRUMENT_NOTIONAL_MAX / 18_000 / multiplier) as i64;
        risk.on_market(0, highest + 1, highest + 1);
        assert_eq!(risk.reference_px(0), None);
        risk.on_market(0, highest, highest);
        assert_eq!(risk.reference_px(0), Some(highest));
    }

    #[test]
    fn a_restore_admits_a_notional_at_its_bound_exactly() {
        // Scales whose product is one notional unit: the reference notional is the price.
        let mut l = limits();
        let a = l.instruments[0].as_mut().unwrap();
        a.price_scale = Scale {
            mantissa: 1,
            exp: 9,
        };
        a.qty_scale = a.price_scale;
        (a.price_min_units, a.price_max_units) = (1, i64::MAX);
        (a.qty_max_units, a.order_qty_max_units) = (QTY_UNITS_MAX, QTY_UNITS_MAX);
        (a.order_notional_max, a.notional_min) = (quote(1 << 20), 0);
        a.position_max_units = QTY_UNITS_MAX;
        assert_eq!(a.notional_multiplier(), Some(1));
        let mut risk = RiskEngine::new(l).unwrap();
        // A reference of 2^62: a worst case of 2^57 (RESTORED_WORST_MAX) is worth 2^119,
        // INSTRUMENT_NOTIONAL_MAX itself. Admitted; one unit more is not.
        risk.on_market(0, 1 << 62, 1 << 62);
        assert_eq!(risk.reference_px(0), Some(1 << 62));
        let buy = |id: u64, qty: i64| limit_buy(id, 1 << 62, qty);
        risk.restore_order(&buy(1, QTY_UNITS_MAX)).unwrap();
        risk.restore_order(&buy(2, QTY_UNITS_MAX)).unwrap();
        assert_eq!(risk.worst_case(0), RESTORED_WORST_MAX);
        assert_eq!(
            risk.restore_order(&buy(3, 1)).unwrap_err().problem,
            RestoreProblem::WorstCase {
                worst: RESTORED_WORST_MAX + 1
            }
        );
        // The bound is 2^57 now, so 2^62 is the largest reference notional: the reference in
        // force, which new limits are taken at; a reference one unit higher is ignored, and
        // one that comes back to 2^62 is taken.
        risk.replace_limits(l).unwrap();
        risk.on_market(0, (1 << 62) + 1, (1 << 62) + 1);
        assert_eq!(risk.reference_px(0), Some(1 << 62));
        risk.on_market(0, (1 << 62) - 1, (1 << 62) - 1);
        risk.on_market(0, 1 << 62, 1 << 62);
        assert_eq!(risk.reference_px(0), Some(1 << 62));
    }

    #[test]
    fn a_full_table_is_refused() {
        let mut l = limits();
        l.open_orders_max = OPEN_ORDERS_MAX as u32;
        let mut risk = RiskEngine::new(l).unwrap();
        let new = |id: u64| limit_buy(id, 10_000, 10);
        for id in 1..=OPEN_ORDERS_MAX as u64 {
            risk.restore_order(&new(id)).unwrap();
        }
        let e = risk.restore_order(&new(5_000)).unwrap_err();
        assert_eq!(e.problem, RestoreProblem::TableFull);
        assert_eq!(risk.open_orders(), OPEN_ORDERS_MAX);
        assert_eq!(risk.open_qty(0), (10 * OPEN_ORDERS_MAX as i64, 0));
    }

    /// What the replays run with: the tripping limits, with instrument 0's position limit
    /// lowered below what the orders built (as after a configuration change), so that restores
    /// raise its ledger's bound.
    fn replay_limits() -> RiskLimits {
        let mut l = tripping_limits();
        l.instruments[0].as_mut().unwrap().position_max_units = 300;
        l
    }

    /// One step of a replay, as recovery takes them from the journal.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Sent(OrderRequest),
        /// A refused request: its id counts as seen.
        Seen(u16, u64),
        Report(ExecutionReport, u64),
        State(TradingState),
        /// The daemon gave up a status round.
        Abandon,
    }

    /// Limits that trip: a fill throttle of 3 fills in 20 ms, a loss limit of 2 quote units.
    fn tripping_limits() -> RiskLimits {
        let mut l = limits();
        l.fill_rate = RateLimit {
            count_max: 3,
            window_ns: 20_000_000,
        };
        l.loss_max = quote(2);
        l
    }

    /// Random requests through a live engine's `check` and random venue answers, recorded as a
    /// replay sees them (as `restored_orders_are_recorded_as_check_recorded_them` makes them),
    /// with operators resuming after trips.
    fn random_ops(rng: &mut fastrand::Rng, steps: usize) -> Vec<Op> {
        let mut live = RiskEngine::new(tripping_limits()).unwrap();
        live.on_market(0, 9_990, 10_010);
        live.on_market(1, 9_990, 10_010);
        let mut ops = Vec::with_capacity(steps);
        let mut now_ns = 1_000_000_000;
        let mut next_id = 1;
        for _ in 0..steps {
            now_ns += STEP_NS;
            let open = open_orders(&live);
            let pick = |rng: &mut fastrand::Rng| open[rng.usize(..open.len())];
            let instrument_id = rng.u32(0..2);
            let mut o = OrderRequest {
                client_order_id: next_id,
                instrument_id,
                strategy_id: rng.u16(1..3),
                kind: order_kind::NEW,
                side: if rng.bool() { side::BUY } else { side::SELL },
                ord_type: ord_type::LIMIT,
                time_in_force: time_in_force::GTC,
                px: 10_000 + rng.i64(-15..=15) * 5,
                qty: rng.i64(1..=40) * 10,
                ..OrderRequest::default()
            };
            match rng.u8(0..12) {
                0 => {
                    o.ord_type = ord_type::MARKET;
                    o.time_in_force = time_in_force::IOC;
                    o.px = 0;
                }
                1..=3 => {}
                4..=5 if !open.is_empty() => {
                    let t = pick(rng);
                    o.kind = order_kind::REPLACE;
                    o.orig_client_order_id = t.client_order_id;
                    (o.instrument_id, o.side) = (t.instrument_id, t.side);
                    o.qty += t.cum_qty;
                }
                6 if !open.is_empty() => {
                    let t = pick(rng);
                    o.kind = order_kind::CANCEL;
                    o.orig_client_order_id = t.client_order_id;
                    o.instrument_id = t.instrument_id;
                }
                7 if rng.u8(..4) == 0 => o.kind = order_kind::MASS_CANCEL,
                7 if rng.u8(..3) == 0 => {
                    o.kind = order_kind::MASS_STATUS;
                    o.instrument_id = u32::MAX;
                }
                7 if live.status_round_open() && rng.bool() => {
                    // The venue's status of an order (or of one only it has), at times the last.
                    let mut r = ExecutionReport {
                        exec_type: exec_type::ORDER_STATUS,
                        instrument_id,
                        side: o.side,
                        px: o.px,
                        leaves_qty: o.qty,
                        client_order_id: 2_000_000 + next_id,
                        ..ExecutionReport::default()
                    };
                    next_id += 1;
                    if !open.is_empty() && rng.u8(..4) != 0 {
                        let t = pick(rng);
                        let missed = rng.i64(0..=t.leaves_qty / 10) * 10;
                        r.client_order_id = t.client_order_id;
                        (r.instrument_id, r.side, r.px) = (t.instrument_id, t.side, t.px);
                        r.cum_qty = t.cum_qty + missed;
                        r.leaves_qty = t.leaves_qty - missed;
                        r.last_px = if rng.bool() { t.px } else { 0 };
                    }
                    if rng.u8(..4) == 0 {
                        r.flags = report_flag::LAST_OF_MASS_STATUS;
                    }
                    live.on_execution(&r, now_ns);
                    ops.push(Op::Report(r, now_ns));
                    continue;
                }
                7 if live.status_round_open() && rng.u8(..4) == 0 => {
                    live.abandon_status_round();
                    ops.push(Op::Abandon);
                    continue;
                }
                8 if rng.u8(..8) == 0 && live.trading_state() != TradingState::Active => {
                    live.set_trading_state(TradingState::Active);
                    ops.push(Op::State(TradingState::Active));
                    continue;
                }
                _ if !open.is_empty() => {
                    let t = pick(rng);
                    let mut r = ExecutionReport {
                        client_order_id: t.client_order_id,
                        instrument_id: t.instrument_id,
                        side: t.side,
                        px: t.px,
                        ..ExecutionReport::default()
                    };
                    r.exec_type = match rng.u8(0..6) {
                        0 => exec_type::NEW,
                        1..=3 => {
                            r.last_qty =
                                (rng.i64(1..=t.leaves_qty.max(10) / 10) * 10).min(t.leaves_qty);
                            r.last_px = 10_000 + rng.i64(-15..=15) * 5;
                            r.leaves_qty = t.leaves_qty - r.last_qty;
                            exec_type::TRADE
                        }
                        4 => exec_type::CANCELED,
                        _ if t.replaces_pending > 0 => {
                            r.leaves_qty = 0;
                            exec_type::REPLACED
                        }
                        _ => exec_type::REJECTED,
                    };
                    live.on_execution(&r, now_ns);
                    ops.push(Op::Report(r, now_ns));
                    continue;
                }
                _ => continue,
            }
            next_id += 1;
            if live.check(&o, now_ns).is_ok() {
                ops.push(Op::Sent(o));
            } else {
                ops.push(Op::Seen(o.strategy_id, o.client_order_id + 1));
            }
        }
        ops
    }

    /// What a replay keeps besides the engine: the fill stamps and each instrument's largest
    /// restored worst case.
    #[derive(Default)]
    struct Kept {
        fills: Vec<u64>,
        worst_max: [i64; 2],
    }

    impl Kept {
        /// The instrument's bound was `before`: if it rose, to what.
        fn raised(&mut self, risk: &RiskEngine, instrument_id: u32, before: i64) {
            let after = risk.worst_case_bound(instrument_id);
            if let Some(w) = self.worst_max.get_mut(instrument_id as usize)
                && after > before
            {
                *w = (*w).max(after);
            }
        }
    }

    fn replay(risk: &mut RiskEngine, ops: &[Op], kept: &mut Kept, seed: u64) {
        for &op in ops {
            match op {
                Op::Sent(o) => {
                    let before = risk.worst_case_bound(o.instrument_id);
                    match risk.restore_order(&o) {
                        Ok(()) => {}
                        Err(RestoreError {
                            problem: RestoreProblem::TargetGone { .. },
                            ..
                        }) => {}
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                    kept.raised(risk, o.instrument_id, before);
                }
                Op::Seen(strategy_id, next) => risk.restore_next_client_order_id(strategy_id, next),
                Op::Report(r, now_ns) => {
                    let before = risk.worst_case_bound(r.instrument_id);
                    if risk.replay_execution(&r, now_ns) {
                        kept.fills.push(now_ns);
                    }
                    kept.raised(risk, r.instrument_id, before);
                }
                Op::State(state) => risk.set_trading_state(state),
                Op::Abandon => risk.abandon_status_round(),
            }
        }
    }

    /// A fresh engine in `from`'s state, as a checkpoint carries it (orders in any order).
    fn copy_state(from: &RiskEngine, kept: &Kept, rng: &mut fastrand::Rng) -> RiskEngine {
        let mut to = RiskEngine::new(*from.limits()).unwrap();
        for id in 0..2 {
            let ledger = from.ledger_state(id).unwrap();
            to.restore_ledger(id, &ledger, kept.worst_max[id as usize])
                .unwrap();
        }
        let mut orders: Vec<OrderState> = from.order_states().collect();
        rng.shuffle(&mut orders);
        for o in &orders {
            to.restore_open_order(o).unwrap();
        }
        to.finish_state_restore();
        for id in 0..2 {
            assert_eq!(to.open_qty(id), from.open_qty(id));
        }
        for (strategy_id, next) in from.client_order_id_marks() {
            to.restore_next_client_order_id(strategy_id, next);
        }
        let remembered = kept
            .fills
            .len()
            .saturating_sub(crate::risk::RATE_WINDOW_MAX);
        to.restore_fill_stamps(&kept.fills[remembered..]);
        to.restore_engine_state(&from.engine_state());
        to
    }

    fn sorted_states(risk: &RiskEngine) -> Vec<OrderState> {
        let mut orders: Vec<OrderState> = risk.order_states().collect();
        orders.sort_by_key(|o| o.client_order_id);
        orders
    }

    /// Everything a replay leaves, and what the fill throttle and the ledgers' bounds say.
    fn assert_same_state(a: &RiskEngine, b: &RiskEngine, ctx: &str) {
        assert_same(a, b, 0);
        assert_eq!(sorted_states(a), sorted_states(b), "{ctx}");
        for id in 0..2 {
            assert_eq!(a.ledger_state(id), b.ledger_state(id), "{ctx}");
            assert_eq!(a.worst_case(id), b.worst_case(id), "{ctx}");
            let (la, lb) = (&a.ledgers[id as usize], &b.ledgers[id as usize]);
            assert_eq!(
                (la.qty_bound, la.ref_notional_max),
                (lb.qty_bound, lb.ref_notional_max),
                "{ctx}"
            );
            let (sa, sb) = (&a.instruments[id as usize], &b.instruments[id as usize]);
            assert_eq!(
                (sa.best_buy_px, sa.best_sell_px),
                (sb.best_buy_px, sb.best_sell_px),
                "{ctx}"
            );
        }
        assert_eq!(a.engine_state(), b.engine_state(), "{ctx}");
        assert_eq!(a.pnl(), b.pnl(), "{ctx}");
        assert_eq!(
            a.client_order_id_marks().collect::<Vec<_>>(),
            b.client_order_id_marks().collect::<Vec<_>>(),
            "{ctx}"
        );
        for now_ns in [0, 1_000_000_000, 2_000_000_000, 4_000_000_000, u64::MAX / 2] {
            for window_ns in [1, 20_000_000, 1_000_000_000, u64::MAX] {
                assert_eq!(
                    a.fill_window.count_within(now_ns, window_ns),
                    b.fill_window.count_within(now_ns, window_ns),
                    "{ctx}: fills within {window_ns} ns of {now_ns}"
                );
                for count_max in [1, 3, 1_024] {
                    assert_eq!(
                        a.fill_window.admits(now_ns, count_max, window_ns),
                        b.fill_window.admits(now_ns, count_max, window_ns),
                        "{ctx}"
                    );
                }
            }
        }
    }

    /// Replayed throughout, or replayed to a random cut, copied into a fresh engine through the
    /// state API and replayed on: the same engine, which then behaves the same under `check`.
    #[test]
    fn a_state_restored_mid_replay_and_replayed_on_is_the_state_replayed_throughout() {
        let seed = levibot_testkit::seed();
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut trips, mut replaces, mut cancels, mut partly, mut beyond) = (0, 0, 0, 0, 0);
        let (mut in_round, mut adopted) = (0, 0);
        for attempt in 0..6 {
            let ops = random_ops(&mut rng, 6_000);
            let mut whole = RiskEngine::new(replay_limits()).unwrap();
            let mut kept_whole = Kept::default();
            replay(&mut whole, &ops, &mut kept_whole, seed);
            for cut_no in 0..4 {
                let cut = rng.usize(..=ops.len());
                let ctx = format!("seed {seed}, attempt {attempt}, cut at {cut}");
                let mut first = RiskEngine::new(replay_limits()).unwrap();
                let mut kept = Kept::default();
                replay(&mut first, &ops[..cut], &mut kept, seed);
                let orders = sorted_states(&first);
                replaces += orders.iter().filter(|o| o.pending_len > 0).count();
                cancels += orders
                    .iter()
                    .filter(|o| o.cancel_client_order_id.is_some())
                    .count();
                partly += orders.iter().filter(|o| o.cum_qty > 0).count();
                trips += usize::from(first.trading_state() != TradingState::Active);
                beyond += usize::from(first.ledgers[0].qty_bound > 300);
                in_round += usize::from(first.status_round_open());
                adopted += first.status_adopted();
                let mut restored = copy_state(&first, &kept, &mut rng);
                assert_same_state(&first, &restored, &ctx);
                replay(&mut restored, &ops[cut..], &mut kept, seed);
                assert_same_state(&whole, &restored, &ctx);
                if cut_no == 0 {
                    // Both now meet the same market and the same requests.
                    let mut requests = fastrand::Rng::with_seed(rng.u64(..));
                    let mut a = RiskEngine::new(replay_limits()).unwrap();
                    replay(&mut a, &ops, &mut Kept::default(), seed);
                    a.set_trading_state(TradingState::Active);
                    restored.set_trading_state(TradingState::Active);
                    for engine in [&mut a, &mut restored] {
                        engine.on_market(0, 9_990, 10_010);
                        engine.on_market(1, 9_990, 10_010);
                    }
                    for k in 0..500u64 {
                        let o = OrderRequest {
                            client_order_id: 1_000_000 + k,
                            instrument_id: requests.u32(0..2),
                            strategy_id: 1,
                            kind: order_kind::NEW,
                            side: if requests.bool() {
                                side::BUY
                            } else {
                                side::SELL
                            },
                            ord_type: ord_type::LIMIT,
                            time_in_force: time_in_force::GTC,
                            px: 10_000 + requests.i64(-15..=15) * 5,
                            qty: requests.i64(1..=40) * 10,
                            ..OrderRequest::default()
                        };
                        let now_ns = 100_000_000_000 + k * STEP_NS;
                        assert_eq!(a.check(&o, now_ns), restored.check(&o, now_ns), "{ctx}");
                    }
                    assert_same_state(&a, &restored, &ctx);
                }
            }
        }
        assert!(
            trips > 0
                && replaces > 0
                && cancels > 0
                && partly > 0
                && beyond > 0
                && in_round > 0
                && adopted > 0,
            "seed {seed}: the cuts saw too little: {trips} tripped, {replaces} replacing, \
             {cancels} cancelling, {partly} partly filled, {beyond} beyond the position limit, \
             {in_round} in a status round, {adopted} adopted"
        );
    }

    #[test]
    fn a_state_that_no_engine_could_hold_is_refused_and_changes_nothing() {
        let mut risk = RiskEngine::new(limits()).unwrap();
        let order = OrderState {
            client_order_id: 7,
            instrument_id: 0,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            px: 10_000,
            leaves_qty: 100,
            cum_qty: 20,
            counted_qty: 150,
            pending: [
                ReplaceState {
                    client_order_id: 8,
                    px: 10_005,
                    qty: 170,
                },
                ReplaceState::default(),
                ReplaceState::default(),
            ],
            pending_len: 1,
            cancel_client_order_id: Some(9),
            acked: true,
            awaiting_status: false,
        };
        risk.restore_open_order(&order).unwrap();
        risk.finish_state_restore();
        assert_eq!(risk.open_qty(0), (150, 0));
        assert_eq!(sorted_states(&risk), [order]);
        for id in [7, 8, 9] {
            assert_eq!(risk.open_order(id).unwrap().client_order_id, 7);
        }
        let problem = |risk: &mut RiskEngine, o: OrderState| {
            let before = (sorted_states(risk), risk.open_qty(0), risk.open_qty(1));
            let e = risk.restore_open_order(&o).unwrap_err();
            assert_eq!(
                (sorted_states(risk), risk.open_qty(0), risk.open_qty(1)),
                before,
                "{e}"
            );
            match e {
                StateProblem::Order { problem, .. } => problem,
                other => panic!("{other}"),
            }
        };
        let other = OrderState {
            client_order_id: 20,
            pending_len: 0,
            counted_qty: 100,
            cancel_client_order_id: None,
            ..order
        };
        assert_eq!(
            problem(
                &mut risk,
                OrderState {
                    counted_qty: 99,
                    ..other
                }
            ),
            RestoreProblem::InvalidField("counted_qty")
        );
        for taken in [7, 8, 9] {
            let o = OrderState {
                cancel_client_order_id: Some(taken),
                ..other
            };
            assert_eq!(
                problem(&mut risk, o),
                RestoreProblem::DuplicateClientOrderId
            );
        }
        let itself = OrderState {
            cancel_client_order_id: Some(20),
            ..other
        };
        assert_eq!(
            problem(&mut risk, itself),
            RestoreProblem::DuplicateClientOrderId
        );
        let market = OrderState {
            ord_type: ord_type::MARKET,
            ..other
        };
        assert_eq!(
            problem(&mut risk, market),
            RestoreProblem::InvalidField("px")
        );
        let market = OrderState {
            px: stp_px(true, true, 0),
            pending_len: 1,
            counted_qty: 150,
            ..market
        };
        assert_eq!(
            problem(&mut risk, market),
            RestoreProblem::InvalidField("pending_len")
        );
        assert_eq!(
            problem(
                &mut risk,
                OrderState {
                    pending_len: 4,
                    ..other
                }
            ),
            RestoreProblem::InvalidField("pending_len")
        );
        assert_eq!(
            problem(
                &mut risk,
                OrderState {
                    leaves_qty: 0,
                    ..other
                }
            ),
            RestoreProblem::InvalidField("leaves_qty")
        );
        assert_eq!(
            problem(
                &mut risk,
                OrderState {
                    instrument_id: 5,
                    ..other
                }
            ),
            RestoreProblem::UnknownInstrument
        );
        // A pending replace with no price, or no quantity.
        for (px, qty) in [(0, 100), (10_000, 0)] {
            let mut bad = OrderState {
                pending_len: 1,
                ..other
            };
            bad.pending[0] = ReplaceState {
                client_order_id: 21,
                px,
                qty,
            };
            assert_eq!(
                problem(&mut risk, bad),
                RestoreProblem::InvalidField("pending"),
                "px {px}, qty {qty}"
            );
        }
        let huge = OrderState {
            leaves_qty: RESTORED_WORST_MAX,
            counted_qty: RESTORED_WORST_MAX,
            ..other
        };
        assert!(matches!(
            problem(&mut risk, huge),
            RestoreProblem::WorstCase { .. }
        ));
        // The same order alone on its instrument builds exactly the largest worst case: taken.
        let mut alone = RiskEngine::new(limits()).unwrap();
        alone.restore_open_order(&huge).unwrap();
        assert_eq!(alone.worst_case(0), RESTORED_WORST_MAX);
        // Ledgers: garbage, and state on an instrument without limits.
        let ledger = LedgerState {
            position: RESTORED_WORST_MAX + 1,
            ..LedgerState::default()
        };
        assert_eq!(
            risk.restore_ledger(1, &ledger, 0),
            Err(StateProblem::Ledger {
                instrument_id: 1,
                field: "position"
            })
        );
        let ledger = LedgerState {
            position: 10,
            ..LedgerState::default()
        };
        assert_eq!(
            risk.restore_ledger(5, &ledger, 0),
            Err(StateProblem::UnknownInstrument(5))
        );
        assert_eq!(risk.restore_ledger(5, &LedgerState::default(), 0), Ok(()));
        // A ledger's open quantities are not restored (they follow from the orders, and an
        // instrument without limits has none): they do not make its ledger non-empty.
        let open_only = LedgerState {
            open_buy_qty: 30,
            open_sell_qty: 40,
            ..LedgerState::default()
        };
        assert_eq!(risk.restore_ledger(5, &open_only, 0), Ok(()));
        assert_eq!(risk.restore_ledger(1, &ledger, 10), Ok(()));
        assert_eq!(risk.position(1), 10);
        // The largest position a ledger may hold, either way.
        for position in [RESTORED_WORST_MAX, -RESTORED_WORST_MAX] {
            let mut risk = RiskEngine::new(limits()).unwrap();
            let ledger = LedgerState {
                position,
                ..LedgerState::default()
            };
            assert_eq!(risk.restore_ledger(1, &ledger, RESTORED_WORST_MAX), Ok(()));
            assert_eq!(risk.position(1), position);
        }
    }
}
