//! The risk stage: every order through [`RiskEngine::check`], every refusal journaled, every
//! execution report and mark into the engine, the operator's commands and new limits taken
//! between two orders, and the engine's positions, PnL and status rounds published as gauges.
//! Its own file because it is the one stage wrapped around the risk engine.

use levibot_shm::codes::{counter_type, label, label::MICROQUOTE_PER_QUOTE};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{ExecutionReport, Record, RiskReject, exec_type};
use levibot_shm::{Appender, ShmError};

use super::{StageClock, counter, gauge, rejected_report};
use crate::pipeline::{RiskCommand, StagedOrder};
use crate::risk::{RiskCheck, RiskEngine, RiskLimits, TradingState};
use crate::strategy::ParamsReceiver;

/// Runs the pre-trade checks, journals every refusal, and counts them by check.
pub struct RiskStage {
    engine: RiskEngine,
    limits: Option<ParamsReceiver<RiskLimits>>,
    appender: Appender,
    clock: StageClock,
    passed: Counter,
    rejected: Counter,
    rejected_by_check: Vec<Counter>,
    trading_state: Counter,
    limits_updates: Counter,
    limits_update_errors: Counter,
    journal_errors: Counter,
    /// The operator's commands (kill switch, resume, a mass status given up), in order; taken
    /// before every order and every duty cycle.
    commands: Option<rtrb::Consumer<RiskCommand>>,
    /// `risk.status_rounds|status_fills_applied|status_dropped|status_adopted|
    /// status_unaccounted`: order mass status rounds and what they changed.
    status: [Counter; 5],
    open_orders: Counter,
    /// Per instrument with limits: position and PnL gauges.
    ledgers: Vec<LedgerGauges>,
    pnl_total: Counter,
    /// Marks until PnL is published again (a 128-bit division: not on every mark).
    marks_until_pnl: u32,
}

/// An instrument's position (`risk.position_units.<SYMBOL>`, quantity units), open orders
/// (`risk.open_orders.<SYMBOL>`) and PnL (`risk.pnl_microquote.<SYMBOL>`, realised + marked,
/// and `risk.realised_pnl_microquote.<SYMBOL>`, in 10^-6 of the quote asset).
struct LedgerGauges {
    instrument_id: u32,
    position_units: Counter,
    open_orders: Counter,
    pnl_microquote: Counter,
    realised_pnl_microquote: Counter,
}

/// Marks between two PnL publications.
const MARKS_PER_PNL_PUBLISH: u32 = 64;
/// Notional units per micro-unit of the quote asset.
const NOTIONAL_PER_MICROQUOTE: i128 =
    crate::risk::limits::NOTIONAL_ONE / MICROQUOTE_PER_QUOTE as i128;
impl RiskStage {
    /// `limits`, if given, is where new limits arrive from the cold side (SIGHUP, `levictl
    /// reload`); they are taken between two orders, whole or not at all.
    pub fn new(
        engine: RiskEngine,
        limits: Option<ParamsReceiver<RiskLimits>>,
        appender: Appender,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<RiskStage, ShmError> {
        let mut rejected_by_check = Vec::with_capacity(RiskCheck::COUNT);
        for check in RiskCheck::ALL {
            rejected_by_check.push(counter(counters, &label::risk_reject(check))?);
        }
        let mut ledgers = Vec::new();
        for (id, limits) in engine.limits().instruments.iter().enumerate() {
            if let Some(limits) = limits {
                let symbol = limits.symbol;
                ledgers.push(LedgerGauges {
                    instrument_id: id as u32,
                    position_units: gauge(counters, &label::risk_position_units(symbol.as_str()))?,
                    open_orders: gauge(counters, &label::risk_open_orders(symbol.as_str()))?,
                    pnl_microquote: gauge(counters, &label::risk_pnl_microquote(symbol.as_str()))?,
                    realised_pnl_microquote: gauge(
                        counters,
                        &label::risk_realised_pnl_microquote(symbol.as_str()),
                    )?,
                });
            }
        }
        let stage = RiskStage {
            commands: None,
            status: [
                counter(counters, label::RISK_STATUS_ROUNDS)?,
                counter(counters, label::RISK_STATUS_FILLS_APPLIED)?,
                counter(counters, label::RISK_STATUS_DROPPED)?,
                counter(counters, label::RISK_STATUS_ADOPTED)?,
                counter(counters, label::RISK_STATUS_UNACCOUNTED)?,
            ],
            open_orders: gauge(counters, label::RISK_OPEN_ORDERS)?,
            ledgers,
            pnl_total: gauge(counters, label::RISK_PNL_MICROQUOTE)?,
            marks_until_pnl: 0,
            engine,
            limits,
            appender,
            clock,
            passed: counter(counters, label::RISK_PASSED)?,
            rejected: counter(counters, label::RISK_REJECTED)?,
            rejected_by_check,
            trading_state: counters.allocate(label::RISK_TRADING_STATE, counter_type::STATE)?,
            limits_updates: counter(counters, label::RISK_LIMITS_UPDATES)?,
            limits_update_errors: counter(counters, label::RISK_LIMITS_UPDATE_ERRORS)?,
            journal_errors: counter(counters, label::RISK_JOURNAL_ERRORS)?,
        };
        stage.publish_state();
        stage.publish_ledgers();
        Ok(stage)
    }

    /// Replaces the engine with one restored from the journal (a restart; before the pipeline
    /// starts). The limits in force are `engine`'s.
    pub fn restore(&mut self, engine: RiskEngine) {
        self.engine = engine;
        self.publish_state();
        self.publish_ledgers();
    }

    /// Takes the operator's commands from `commands` from now on.
    pub fn set_commands(&mut self, commands: rtrb::Consumer<RiskCommand>) {
        self.commands = Some(commands);
    }

    /// Applies the operator's pending commands, in order.
    #[inline]
    /// Whether an operator's command waits to be taken.
    pub fn has_commands_waiting(&self) -> bool {
        self.commands.as_ref().is_some_and(|c| !c.is_empty())
    }

    pub fn take_commands(&mut self) {
        while let Some(command) = self.commands.as_mut().and_then(|c| c.pop().ok()) {
            match command {
                RiskCommand::SetState(state) => self.set_trading_state(state),
                RiskCommand::AbandonStatusRound => self.engine.abandon_status_round(),
            }
        }
    }

    /// Publishes the mass status rounds' counts (after an order status report).
    #[cold]
    fn publish_status(&self) {
        let e = &self.engine;
        let values = [
            e.status_rounds(),
            e.status_fills_applied(),
            e.status_dropped(),
            e.status_adopted(),
            e.status_unaccounted(),
        ];
        for (counter, value) in self.status.iter().zip(values) {
            counter.set(value as i64);
        }
    }

    /// Publishes open orders, positions and PnL.
    fn publish_ledgers(&self) {
        self.open_orders.set(self.engine.open_orders() as i64);
        for l in &self.ledgers {
            self.publish_ledger(l);
        }
        self.publish_pnl();
    }

    /// An instrument's position and open orders (O(1)).
    #[inline]
    fn publish_ledger(&self, l: &LedgerGauges) {
        l.position_units.set(self.engine.position(l.instrument_id));
        l.open_orders
            .set(i64::from(self.engine.open_orders_of(l.instrument_id)));
    }

    fn publish_pnl(&self) {
        let micro = |notional: i128| {
            (notional / NOTIONAL_PER_MICROQUOTE).clamp(i64::MIN as i128, i64::MAX as i128) as i64
        };
        for l in &self.ledgers {
            l.pnl_microquote
                .set(micro(self.engine.instrument_pnl(l.instrument_id)));
            l.realised_pnl_microquote
                .set(micro(self.engine.realised_pnl(l.instrument_id)));
        }
        self.pnl_total.set(micro(self.engine.pnl()));
    }

    pub fn engine(&self) -> &RiskEngine {
        &self.engine
    }

    /// The kill switch and its release (cold side; through the control path in issue 6).
    pub fn set_trading_state(&mut self, state: TradingState) {
        self.engine.set_trading_state(state);
        self.publish_state();
    }

    fn publish_state(&self) {
        self.trading_state.set(self.engine.trading_state().code());
    }

    #[inline]
    fn take_limits(&mut self) {
        if self.limits.as_ref().is_some_and(|m| m.has_pending()) {
            self.apply_limits_update();
        }
    }

    /// Out of line: the limits are one large value (`[Option<InstrumentLimits>;
    /// RISK_INSTRUMENTS_MAX]`). Inlined, its copies made every duty cycle of the risk agent
    /// reserve and probe a stack frame of tens of kilobytes, page by page, whether or not an
    /// order came (measured: a twelfth of a backtest's time).
    #[cold]
    #[inline(never)]
    fn apply_limits_update(&mut self) {
        let Some(mailbox) = self.limits.as_mut() else {
            return;
        };
        match self.engine.apply_pending_limits(mailbox) {
            None => {}
            Some(Ok(())) => self.limits_updates.increment(),
            // The cold side validated them before sending; a refusal here leaves the limits in
            // force unchanged.
            Some(Err(_)) => self.limits_update_errors.increment(),
        }
    }

    /// Checks one order. Passed: the order, stamped `risk_tsc`. Refused: the journaled
    /// `RiskReject` has been counted, and the returned report (exec type REJECTED, reason = the
    /// check's code) tells the strategy.
    #[inline]
    pub fn on_order(&mut self, staged: &StagedOrder) -> Result<StagedOrder, ExecutionReport> {
        let risk_start_tsc = self.clock.now_tsc();
        self.take_limits();
        self.take_commands();
        let result = self
            .engine
            .check(&staged.order, self.clock.unix_ns(risk_start_tsc));
        let risk_tsc = self.clock.now_tsc();
        self.publish_state();
        match result {
            Ok(()) => {
                self.open_orders.set(self.engine.open_orders() as i64);
                if let Some(l) = self
                    .ledgers
                    .iter()
                    .find(|l| l.instrument_id == staged.order.instrument_id)
                {
                    l.open_orders.set(i64::from(
                        self.engine.open_orders_of(staged.order.instrument_id),
                    ));
                }
                self.passed.increment();
                let mut passed = *staged;
                passed.order.risk_tsc = risk_tsc;
                passed.risk_start_tsc = risk_start_tsc;
                Ok(passed)
            }
            Err(mut reject) => {
                reject.request.risk_tsc = risk_tsc;
                self.rejected.increment();
                if let Some(check) = RiskCheck::from_code(reject.check) {
                    self.rejected_by_check[check.index()].increment();
                }
                if self
                    .appender
                    .append(RiskReject::RECORD_TYPE, reject.to_bytes())
                    .is_err()
                {
                    self.journal_errors.increment();
                }
                Err(rejected_report(
                    &staged.order,
                    u32::from(reject.check),
                    risk_tsc,
                ))
            }
        }
    }

    /// The top of an instrument's book moved: the reference and mark price.
    #[inline]
    pub fn on_mark(&mut self, instrument_id: u32, bid_px: i64, ask_px: i64) {
        self.engine.on_market(instrument_id, bid_px, ask_px);
        if self.marks_until_pnl == 0 {
            self.marks_until_pnl = MARKS_PER_PNL_PUBLISH;
            self.publish_pnl();
        }
        self.marks_until_pnl -= 1;
    }

    /// An execution report: positions, open orders, PnL.
    #[inline]
    pub fn on_report(&mut self, report: &ExecutionReport) {
        let now = self.clock.now_tsc();
        self.engine.on_execution(report, self.clock.unix_ns(now));
        self.publish_state();
        // O(1) per report: open orders and the report's position; PnL (a 128-bit division
        // per instrument) waits for the next mark, which a fill makes due at once.
        self.open_orders.set(self.engine.open_orders() as i64);
        if let Some(l) = self
            .ledgers
            .iter()
            .find(|l| l.instrument_id == report.instrument_id)
        {
            self.publish_ledger(l);
        }
        if report.exec_type == exec_type::TRADE {
            self.marks_until_pnl = 0;
        }
        if report.exec_type == exec_type::ORDER_STATUS {
            self.publish_status();
        }
    }
}
