//! Restoring an engine's state after a restart (cold path: `daemon::recovery` replays the
//! journal through it). An order the journal says was sent is recorded exactly as
//! [`check`](RiskEngine::check) recorded it when it passed (the same `record_*` steps), without
//! running the checks: they held when it was sent, and the limits or the reference price may
//! have changed since. Rate windows and recent orders are left alone: the throttles bound what
//! this run sends. Execution reports are replayed with [`on_execution`](RiskEngine::on_execution).

use levibot_shm::records::{OrderRequest, ord_type, order_kind, side};

use super::{
    INSTRUMENT_NOTIONAL_MAX, OPEN_ORDERS_MAX, QTY_UNITS_MAX, REPLACES_PENDING_MAX,
    RISK_INSTRUMENTS_MAX, RiskEngine, stp_px,
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
    /// pending on its target; a mass cancel records nothing. No check runs and neither the
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
            let s = &self.instruments[id];
            let open = if o.side == side::BUY {
                s.open_buy_qty
            } else {
                s.open_sell_qty
            };
            let worst = s
                .position
                .saturating_abs()
                .saturating_add(open)
                .saturating_add(o.qty);
            let bound = self.ledgers[id].qty_bound.max(worst) as i128;
            if o.qty > QTY_UNITS_MAX
                || worst > RESTORED_WORST_MAX
                || s.ref_notional > INSTRUMENT_NOTIONAL_MAX / bound
            {
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
    /// allows, follow the restored worst case.
    fn cover_worst_case(&mut self, id: usize) {
        let s = &self.instruments[id];
        let worst_long = s.position.saturating_add(s.open_buy_qty);
        let worst_short = s.position.saturating_sub(s.open_sell_qty);
        let worst = worst_long.max(worst_short.saturating_neg());
        let ledger = &mut self.ledgers[id];
        if worst > ledger.qty_bound {
            ledger.qty_bound = worst;
            ledger.ref_notional_max = INSTRUMENT_NOTIONAL_MAX / worst as i128;
        }
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
    use levibot_shm::records::{ExecutionReport, exec_type, time_in_force};

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
        assert_eq!(
            problem(
                &mut risk,
                OrderRequest {
                    side: side::SELL,
                    ..replace(12, 7)
                }
            ),
            RestoreProblem::TargetMismatch { target: 7 }
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
        let buy = |id: u64, qty: i64| OrderRequest {
            client_order_id: id,
            kind: order_kind::NEW,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            px: 10_000,
            qty,
            ..OrderRequest::default()
        };
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
    fn a_full_table_is_refused() {
        let mut l = limits();
        l.open_orders_max = OPEN_ORDERS_MAX as u32;
        let mut risk = RiskEngine::new(l).unwrap();
        let new = |id: u64| OrderRequest {
            client_order_id: id,
            kind: order_kind::NEW,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            px: 10_000,
            qty: 10,
            ..OrderRequest::default()
        };
        for id in 1..=OPEN_ORDERS_MAX as u64 {
            risk.restore_order(&new(id)).unwrap();
        }
        let e = risk.restore_order(&new(5_000)).unwrap_err();
        assert_eq!(e.problem, RestoreProblem::TableFull);
        assert_eq!(risk.open_orders(), OPEN_ORDERS_MAX);
        assert_eq!(risk.open_qty(0), (10 * OPEN_ORDERS_MAX as i64, 0));
    }
}
