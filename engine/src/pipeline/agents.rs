//! The stages as agents joined by rings. Each agent's `do_work` does a bounded amount of work.
//!
//! Backpressure without deadlock: the rings form cycles (orders go down, execution reports come
//! back up), so an agent whose downstream ring is full still takes its *report* inputs (they
//! never need the blocked ring: the strategy holds what a report makes it send in its outbox's
//! spill), and takes new market data or orders only when nothing is held back. The gateway
//! keeps encoding while its report rings are full: reports wait in the venue (a socket buffer)
//! until they can be passed on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use levibot_shm::records::ExecutionReport;

use super::stages::{FeedStage, GatewayStage, RiskStage, StrategyStage};
use super::venue::Venue;
use super::{Decoded, MarketRecord, StagedOrder, ToRisk};
use crate::agent::Agent;
use crate::ring::{Outbox, RingReceiver, Rings};
use crate::strategy::{ORDERS_PER_EVENT_MAX, Strategy};
use levibot_gateway::source::{MessageSource, Polled};

/// A ring's sending end with the full-ring policy.
pub type Tx<T, R> = Outbox<T, <R as Rings>::Sender<T>>;
/// A ring's receiving end.
pub type Rx<T, R> = <R as Rings>::Receiver<T>;

/// Records a strategy's outbox may hold back: marks and orders of one event, several times
/// over, so that reports can still be taken while risk is busy.
pub const STRATEGY_SPILL_MAX: usize = 8 * (ORDERS_PER_EVENT_MAX + 1);
/// Reports an agent passes on or takes per duty cycle (bounds a cycle).
pub const REPORTS_PER_CYCLE_MAX: usize = 64;
/// Orders or market records an agent takes per duty cycle (bounds a cycle).
pub const INPUTS_PER_CYCLE_MAX: usize = 64;
/// How often the strategy agent runs its strategies' timers, ns.
pub const STRATEGY_TIMER_INTERVAL_NS: u64 = 1_000_000;

/// Reads the source, decodes, and passes records to the strategy.
pub struct FeedAgent<Src: MessageSource, R: Rings> {
    pub(super) source: Src,
    pub(super) stage: FeedStage,
    pub(super) out: Tx<Decoded, R>,
    /// Messages per duty cycle (1 in the fused layout: each message goes all the way through
    /// before the next is read).
    pub(super) messages_per_cycle: usize,
    pub(super) done: bool,
    pub(super) done_flag: Arc<AtomicBool>,
}

impl<Src: MessageSource, R: Rings> FeedAgent<Src, R> {
    /// Whether the source said it has nothing more.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn source(&self) -> &Src {
        &self.source
    }

    pub fn source_mut(&mut self) -> &mut Src {
        &mut self.source
    }

    pub fn stage(&self) -> &FeedStage {
        &self.stage
    }

    pub fn stage_mut(&mut self) -> &mut FeedStage {
        &mut self.stage
    }

    /// Whether a duty cycle now would do nothing (see [`Pipeline::settle`](super::Pipeline::settle)):
    /// no record held in its outbox and the source says it has nothing to hand.
    pub fn is_settled(&self) -> bool {
        !self.out.is_blocked() && !self.source.may_have_message()
    }

    /// Hands on one message's records decoded earlier ([`FeedStage::on_decoded`]), as a duty
    /// cycle hands on a message it decoded. Returns false, taking nothing, while the ring to
    /// the strategy is blocked.
    pub fn hand_on_decoded(&mut self, records: impl Iterator<Item = MarketRecord>) -> bool {
        if !self.out.flush() || self.out.is_blocked() {
            return false;
        }
        let out = &mut self.out;
        let gap = self.stage.on_decoded(records, |d| {
            out.send(d);
        });
        if let Some(instrument_id) = gap {
            self.source.resync(instrument_id);
        }
        true
    }
}

impl<Src: MessageSource, R: Rings> Agent for FeedAgent<Src, R> {
    fn role_name(&self) -> &str {
        "feed"
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        if !self.out.flush() {
            return 0;
        }
        let mut work = 0;
        while work < self.messages_per_cycle && !self.out.is_blocked() {
            let now = self.stage.now_tsc();
            match self.source.poll(now) {
                Polled::Message { bytes, due_tsc } => {
                    let out = &mut self.out;
                    let gap = self.stage.on_message(bytes, due_tsc, |d| {
                        out.send(d);
                    });
                    if let Some(instrument_id) = gap {
                        self.source.resync(instrument_id);
                    }
                }
                Polled::Snapshot {
                    instrument_id,
                    body,
                } => {
                    let out = &mut self.out;
                    self.stage.on_snapshot(instrument_id, body, |d| {
                        out.send(d);
                    });
                }
                Polled::Stale => {
                    self.out.send(Decoded {
                        record: MarketRecord::Stale,
                        due_tsc: now,
                        recv_tsc: now,
                        decoded_tsc: now,
                    });
                }
                Polled::Resync => {
                    self.out.send(Decoded {
                        record: MarketRecord::Resync,
                        due_tsc: now,
                        recv_tsc: now,
                        decoded_tsc: now,
                    });
                }
                Polled::Idle => break,
                Polled::Done => {
                    if !self.done {
                        self.done = true;
                        self.done_flag.store(true, Ordering::Release);
                    }
                    break;
                }
            }
            work += 1;
        }
        work
    }

    #[inline]
    fn do_deferred_work(&mut self) -> usize {
        self.stage.journal_pending()
    }
}

/// Keeps books and features, runs the strategies, passes orders and marks to risk.
pub struct StrategyAgent<S: Strategy, R: Rings> {
    pub(super) stage: StrategyStage<S>,
    pub(super) market: Rx<Decoded, R>,
    /// Reports from the venue (through the gateway).
    pub(super) reports: Rx<ExecutionReport, R>,
    /// Risk's refusals.
    pub(super) rejects: Rx<ExecutionReport, R>,
    pub(super) out: Tx<ToRisk, R>,
    pub(super) next_timer_tsc: u64,
    pub(super) timer_interval_ticks: u64,
}

impl<S: Strategy, R: Rings> StrategyAgent<S, R> {
    pub fn stage(&self) -> &StrategyStage<S> {
        &self.stage
    }

    /// Whether a duty cycle now would do nothing (see [`Pipeline::settle`](super::Pipeline::settle)):
    /// every link into it empty, nothing held in its outbox, no command waiting, its timer not
    /// due.
    pub fn is_settled(&self) -> bool {
        let timer_due =
            self.timer_interval_ticks > 0 && self.stage.now_tsc() >= self.next_timer_tsc;
        !self.out.is_blocked()
            && self.market.is_known_empty()
            && self.reports.is_known_empty()
            && self.rejects.is_known_empty()
            && !self.stage.has_commands_waiting()
            && !timer_due
    }

    /// When the strategies' timer is next due, in the stage clock's ticks, if any strategy
    /// uses its timer: a clock that jumps from event to event (a backtest's) must stop there
    /// too, or timers would run only when an event comes.
    pub fn next_timer_tsc(&self) -> Option<u64> {
        (self.timer_interval_ticks > 0 && self.stage.uses_timer()).then_some(self.next_timer_tsc)
    }
}

impl<S: Strategy, R: Rings> Agent for StrategyAgent<S, R> {
    fn role_name(&self) -> &str {
        "strategy"
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        self.out.flush();
        let mut work = 0;
        if self.out.room() > ORDERS_PER_EVENT_MAX {
            let out = &mut self.out;
            work += self.stage.take_commands(|x| {
                out.send(x);
            });
        }
        // Reports first: they change what the strategy has working. Taken while the spill has
        // room for what one report can make the strategy send (plus a mark).
        for _ in 0..REPORTS_PER_CYCLE_MAX {
            if self.out.room() <= ORDERS_PER_EVENT_MAX {
                break;
            }
            let Some(report) = self.rejects.try_pop().or_else(|| self.reports.try_pop()) else {
                break;
            };
            let out = &mut self.out;
            self.stage.on_report(&report, |x| {
                out.send(x);
            });
            work += 1;
        }
        for _ in 0..INPUTS_PER_CYCLE_MAX {
            if self.out.is_blocked() {
                break;
            }
            // Read where it lies in the ring (a depth chunk is 600 bytes: no copy out).
            let (stage, out) = (&mut self.stage, &mut self.out);
            let taken = self.market.pop_with(|decoded| {
                stage.on_market(decoded, |x| {
                    out.send(x);
                });
            });
            if taken.is_none() {
                break;
            }
            work += 1;
        }
        if self.timer_interval_ticks > 0 {
            let now = self.stage.now_tsc();
            if now >= self.next_timer_tsc {
                self.next_timer_tsc = now + self.timer_interval_ticks;
                // A strategy whose turn finds no room waits for the next tick.
                for slot in 0..self.stage.traded() {
                    if self.out.room() <= ORDERS_PER_EVENT_MAX {
                        break;
                    }
                    let out = &mut self.out;
                    self.stage.on_timer(slot, |x| {
                        out.send(x);
                    });
                }
            }
        }
        work
    }

    #[inline]
    fn do_deferred_work(&mut self) -> usize {
        self.stage.journal_pending()
    }
}

/// Checks orders, passes them to the gateway, sends refusals back to the strategy.
pub struct RiskAgent<R: Rings> {
    pub(super) stage: RiskStage,
    pub(super) input: Rx<ToRisk, R>,
    /// Reports from the venue (through the gateway).
    pub(super) reports: Rx<ExecutionReport, R>,
    pub(super) out: Tx<StagedOrder, R>,
    pub(super) rejects: Tx<ExecutionReport, R>,
}

impl<R: Rings> RiskAgent<R> {
    pub fn stage(&self) -> &RiskStage {
        &self.stage
    }

    /// Before the pipeline starts (a restart restores the engine recovered from the journal).
    pub fn stage_mut(&mut self) -> &mut RiskStage {
        &mut self.stage
    }

    /// Whether a duty cycle now would do nothing (see [`Pipeline::settle`](super::Pipeline::settle)):
    /// every link into it empty, nothing held in its outboxes, no command waiting.
    pub fn is_settled(&self) -> bool {
        !self.out.is_blocked()
            && !self.rejects.is_blocked()
            && self.input.is_known_empty()
            && self.reports.is_known_empty()
            && !self.stage.has_commands_waiting()
    }
}

impl<R: Rings> Agent for RiskAgent<R> {
    fn role_name(&self) -> &str {
        "risk"
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        self.out.flush();
        self.rejects.flush();
        // The kill switch holds from this duty cycle on.
        self.stage.take_commands();
        let mut work = 0;
        // Reports need no output: always taken.
        for _ in 0..REPORTS_PER_CYCLE_MAX {
            let Some(report) = self.reports.try_pop() else {
                break;
            };
            self.stage.on_report(&report);
            work += 1;
        }
        for _ in 0..INPUTS_PER_CYCLE_MAX {
            if self.out.is_blocked() || self.rejects.is_blocked() {
                break;
            }
            let Some(input) = self.input.try_pop() else {
                break;
            };
            match input {
                ToRisk::Mark {
                    instrument_id,
                    bid_px,
                    ask_px,
                } => self.stage.on_mark(instrument_id, bid_px, ask_px),
                ToRisk::Order(staged) => match self.stage.on_order(&staged) {
                    Ok(passed) => {
                        self.out.send(passed);
                    }
                    Err(report) => {
                        self.rejects.send(report);
                    }
                },
            }
            work += 1;
        }
        work
    }
}

/// Encodes and sends orders; passes the venue's reports to risk and the strategy.
pub struct GatewayAgent<V: Venue, R: Rings> {
    pub(super) stage: GatewayStage<V>,
    pub(super) input: Rx<StagedOrder, R>,
    pub(super) to_strategy: Tx<ExecutionReport, R>,
    pub(super) to_risk: Tx<ExecutionReport, R>,
    /// Idle duty cycles until the venue is polled again (see `VENUE_POLL_IDLE_CYCLES`).
    pub(super) venue_poll_in: u32,
}

/// Idle duty cycles between two polls of the venue's socket. Each poll is a `read` system call
/// (1-2 µs on a VM): polling every cycle makes every cycle that long, and a market-data frame
/// waits half a cycle on average before the feed reads it. After any work the venue is polled
/// at once (an order was just sent: its ack is what comes next).
pub const VENUE_POLL_IDLE_CYCLES: u32 = 4;

impl<V: Venue, R: Rings> GatewayAgent<V, R> {
    pub fn stage(&self) -> &GatewayStage<V> {
        &self.stage
    }

    pub fn stage_mut(&mut self) -> &mut GatewayStage<V> {
        &mut self.stage
    }

    /// Whether a duty cycle now would do nothing (see [`Pipeline::settle`](super::Pipeline::settle)):
    /// no order waiting, nothing held in its outboxes, and the venue says no report is ready.
    /// (An idle cycle may still flush the venue: every cycle that encodes an order flushes it,
    /// so there is nothing left to send then.)
    pub fn is_settled(&self) -> bool {
        !self.to_strategy.is_blocked()
            && !self.to_risk.is_blocked()
            && self.input.is_known_empty()
            && !self.stage.venue().may_have_report()
    }
}

impl<V: Venue, R: Rings> Agent for GatewayAgent<V, R> {
    fn role_name(&self) -> &str {
        "gateway"
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        self.to_strategy.flush();
        self.to_risk.flush();
        let mut work = 0;
        // Orders first: tick-to-trade ends here. An order that cannot be encoded makes a report,
        // so orders are taken while the report outboxes have room for one.
        for _ in 0..INPUTS_PER_CYCLE_MAX {
            if self.to_strategy.room() == 0 || self.to_risk.room() == 0 {
                break;
            }
            let Some(staged) = self.input.try_pop() else {
                break;
            };
            if let Err(report) = self.stage.on_order(&staged) {
                self.to_strategy.send(report);
                self.to_risk.send(report);
            }
            work += 1;
        }
        if work > 0 || self.venue_poll_in == 0 {
            self.stage.poll_venue();
            self.venue_poll_in = VENUE_POLL_IDLE_CYCLES;
        } else {
            self.venue_poll_in -= 1;
        }
        for _ in 0..REPORTS_PER_CYCLE_MAX {
            if self.to_strategy.is_blocked() || self.to_risk.is_blocked() {
                break;
            }
            let Some(report) = self.stage.poll_report() else {
                break;
            };
            self.to_risk.send(report);
            self.to_strategy.send(report);
            work += 1;
        }
        work
    }
}
