//! The strategy interface: one trait, static dispatch, orders out through a fixed-capacity
//! sink, parameters replaced between events.
//!
//! - [`Strategy`]: `on_market` (with the instrument's book and features), `on_execution`,
//!   `on_timer`. Hot path: no allocation, no lock, no syscall, no formatting.
//! - [`OrderSink`]: at most [`ORDERS_PER_EVENT_MAX`] requests per event; it numbers them.
//! - [`params_mailbox`]: replaces a strategy's parameters from another thread (SIGHUP, `levictl
//!   reload`) without a lock: parameters are one `Copy` value, taken whole between two events,
//!   so a strategy never sees half an update.

pub mod maker;
pub mod model;
pub mod signal;

use levibot_shm::records::{ExecutionReport, OrderRequest, ord_type, order_kind, time_in_force};
use rtrb::{Consumer, Producer, RingBuffer};

use crate::book::OrderBook;
use crate::features::Features;

/// Most order requests one event may produce (a cancel/replace of both quotes, a bracket...).
pub const ORDERS_PER_EVENT_MAX: usize = 8;
/// Parameter updates that may wait for the strategy to take them (the newest wins).
pub const PARAMS_PENDING_MAX: usize = 4;

/// The grid an instrument's orders must sit on, in its price and quantity units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub tick_units: i64,
    pub lot_units: i64,
}

impl Grid {
    /// The highest tick at or below `px`.
    #[inline]
    pub fn floor_px(&self, px: i64) -> i64 {
        px.div_euclid(self.tick_units) * self.tick_units
    }

    /// The lowest tick at or above `px`.
    #[inline]
    pub fn ceil_px(&self, px: i64) -> i64 {
        -(-px).div_euclid(self.tick_units) * self.tick_units
    }

    /// Whole lots at or below `qty`.
    #[inline]
    pub fn floor_qty(&self, qty: i64) -> i64 {
        qty.div_euclid(self.lot_units) * self.lot_units
    }
}

/// What a strategy sees of one instrument when its market data changes.
pub struct MarketView<'a> {
    pub instrument_id: u32,
    pub grid: Grid,
    /// Synced, or the strategy must not quote from it.
    pub book: &'a OrderBook,
    pub features: &'a Features,
    /// Event time, ns (the venue's or the receive clock's; monotonic per instrument).
    pub ts_ns: u64,
    /// TSC when the event's bytes were read: stamped on the orders it causes.
    pub recv_tsc: u64,
    /// The feature journal takes a snapshot of this event: [`Strategy::output`] is wanted
    /// (a strategy may skip computing it otherwise).
    pub output_wanted: bool,
}

/// Where a strategy puts its orders for one event. Fixed capacity; numbers the orders.
#[derive(Debug)]
pub struct OrderSink {
    orders: [OrderRequest; ORDERS_PER_EVENT_MAX],
    len: usize,
    next_client_order_id: u64,
    strategy_id: u16,
    created_tsc: u64,
    /// Requests refused because the sink was full.
    pub overflowed: u64,
}

impl OrderSink {
    /// A sink whose first order gets `first_client_order_id` (recovered from the journal).
    pub fn new(strategy_id: u16, first_client_order_id: u64) -> Self {
        OrderSink {
            orders: [OrderRequest::default(); ORDERS_PER_EVENT_MAX],
            len: 0,
            next_client_order_id: first_client_order_id,
            strategy_id,
            created_tsc: 0,
            overflowed: 0,
        }
    }

    /// Starts an event: clears the previous orders; `created_tsc` stamps the new ones.
    #[inline]
    pub fn begin(&mut self, created_tsc: u64) {
        self.len = 0;
        self.created_tsc = created_tsc;
    }

    /// The orders of the current event.
    #[inline]
    pub fn orders(&self) -> &[OrderRequest] {
        &self.orders[..self.len]
    }

    pub fn next_client_order_id(&self) -> u64 {
        self.next_client_order_id
    }

    #[inline]
    fn push(&mut self, mut order: OrderRequest) -> Option<u64> {
        if self.len == ORDERS_PER_EVENT_MAX {
            self.overflowed += 1;
            return None;
        }
        order.client_order_id = self.next_client_order_id;
        order.strategy_id = self.strategy_id;
        order.created_tsc = self.created_tsc;
        self.next_client_order_id += 1;
        self.orders[self.len] = order;
        self.len += 1;
        Some(order.client_order_id)
    }

    /// A new limit order; returns its client order id (`None` if the sink is full).
    #[inline]
    pub fn limit(
        &mut self,
        instrument_id: u32,
        side: u8,
        px: i64,
        qty: i64,
        tif: u8,
    ) -> Option<u64> {
        self.limit_flagged(instrument_id, side, px, qty, tif, 0)
    }

    /// [`limit`](Self::limit) with [`order_flag`](levibot_shm::records::order_flag) bits
    /// (post-only).
    #[inline]
    pub fn limit_flagged(
        &mut self,
        instrument_id: u32,
        side: u8,
        px: i64,
        qty: i64,
        tif: u8,
        flags: u16,
    ) -> Option<u64> {
        self.push(OrderRequest {
            instrument_id,
            kind: order_kind::NEW,
            side,
            ord_type: ord_type::LIMIT,
            time_in_force: tif,
            px,
            qty,
            flags,
            ..OrderRequest::default()
        })
    }

    /// Cancels `orig_client_order_id`.
    #[inline]
    pub fn cancel(
        &mut self,
        instrument_id: u32,
        side: u8,
        orig_client_order_id: u64,
    ) -> Option<u64> {
        self.push(OrderRequest {
            instrument_id,
            kind: order_kind::CANCEL,
            side,
            orig_client_order_id,
            time_in_force: time_in_force::GTC,
            ..OrderRequest::default()
        })
    }

    /// Cancels every open order of `instrument_id` at the venue (`u32::MAX`: of every
    /// instrument): the kill switch's one request.
    #[inline]
    pub fn mass_cancel(&mut self, instrument_id: u32) -> Option<u64> {
        self.push(OrderRequest {
            instrument_id,
            kind: order_kind::MASS_CANCEL,
            ..OrderRequest::default()
        })
    }

    /// Asks the venue for the status of every working order of `instrument_id` (`u32::MAX`:
    /// of every instrument); the request's client order id is its MassStatusReqID. Open a
    /// status round in risk first (`RiskEngine::begin_status_round`).
    #[inline]
    pub fn mass_status(&mut self, instrument_id: u32) -> Option<u64> {
        self.push(OrderRequest {
            instrument_id,
            kind: order_kind::MASS_STATUS,
            ..OrderRequest::default()
        })
    }

    /// Replaces `orig_client_order_id` with a new price and quantity.
    #[inline]
    pub fn replace(
        &mut self,
        instrument_id: u32,
        side: u8,
        orig_client_order_id: u64,
        px: i64,
        qty: i64,
    ) -> Option<u64> {
        self.replace_flagged(instrument_id, side, orig_client_order_id, px, qty, 0)
    }

    /// [`replace`](Self::replace) with [`order_flag`](levibot_shm::records::order_flag) bits
    /// (post-only): the replacement carries them.
    #[inline]
    pub fn replace_flagged(
        &mut self,
        instrument_id: u32,
        side: u8,
        orig_client_order_id: u64,
        px: i64,
        qty: i64,
        flags: u16,
    ) -> Option<u64> {
        self.push(OrderRequest {
            instrument_id,
            kind: order_kind::REPLACE,
            side,
            ord_type: ord_type::LIMIT,
            time_in_force: time_in_force::GTC,
            orig_client_order_id,
            px,
            qty,
            flags,
            ..OrderRequest::default()
        })
    }
}

/// A trading strategy. Generic code calls it through `S: Strategy` (static dispatch).
pub trait Strategy: Send {
    /// Its parameters: one `Copy` value, replaced whole.
    type Params: Copy + Send + std::fmt::Debug;

    fn name(&self) -> &str;

    /// The instrument's book or features changed.
    fn on_market(&mut self, view: &MarketView<'_>, out: &mut OrderSink);

    /// The venue reported on one of our orders.
    fn on_execution(&mut self, report: &ExecutionReport, out: &mut OrderSink);

    /// Periodic call (the strategy's own timeouts).
    fn on_timer(&mut self, _now_ns: u64, _out: &mut OrderSink) {}

    /// Whether [`on_timer`](Self::on_timer) does anything. A backtest, whose clock moves only
    /// to the next event, wakes the strategies at their timer's times only when one of them
    /// does: override it with `on_timer`.
    fn uses_timer(&self) -> bool {
        false
    }

    /// What the strategy made of the features at the last market event (a vote, a model's
    /// prediction), journaled with them ([`FeatureSnapshot::output`]); NaN for none.
    ///
    /// [`FeatureSnapshot::output`]: levibot_shm::records::FeatureSnapshot::output
    fn output(&self) -> f64 {
        f64::NAN
    }

    /// The model in force, journaled with the features (the first 8 bytes of its file's
    /// SHA-256); 0 for none.
    fn model_id(&self) -> u64 {
        0
    }

    /// Before the pipeline starts: the position already held in the strategy's instrument
    /// (recovered from the journal after a restart; quantity units, + long). Cold path.
    fn start_from_position(&mut self, _position: i64) {}

    fn params(&self) -> Self::Params;

    /// Takes new parameters (already validated) between two events.
    fn set_params(&mut self, params: Self::Params);
}

/// Sends parameter updates to a strategy on another thread.
pub struct ParamsSender<P> {
    producer: Producer<P>,
}

/// Taken by the strategy's agent between events.
pub struct ParamsReceiver<P> {
    consumer: Consumer<P>,
}

/// A lock-free mailbox for parameter updates (cold side -> hot side).
pub fn params_mailbox<P: Copy>() -> (ParamsSender<P>, ParamsReceiver<P>) {
    let (producer, consumer) = RingBuffer::new(PARAMS_PENDING_MAX);
    (ParamsSender { producer }, ParamsReceiver { consumer })
}

impl<P: Copy> ParamsSender<P> {
    /// Queues `params`; `false` if `PARAMS_PENDING_MAX` updates are already waiting (send again
    /// once the strategy has taken them).
    pub fn send(&mut self, params: P) -> bool {
        self.producer.push(params).is_ok()
    }

    /// Whether [`send`](Self::send) would take one more update now (only this sender fills
    /// the mailbox: a `true` holds until it sends).
    pub fn has_room(&self) -> bool {
        self.producer.slots() > 0
    }
}

impl<P: Copy> ParamsReceiver<P> {
    /// Whether an update is pending: a cheap check before [`latest`](Self::latest), whose
    /// value may be large (risk limits are tens of kilobytes).
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.consumer.is_empty()
    }

    /// The newest pending update, if any (older pending ones are superseded).
    #[inline]
    pub fn latest(&mut self) -> Option<P> {
        let mut latest = None;
        while let Ok(p) = self.consumer.pop() {
            latest = Some(p);
        }
        latest
    }

    /// Applies the newest pending update to `strategy`; call between events.
    #[inline]
    pub fn apply_to<S: Strategy<Params = P>>(&mut self, strategy: &mut S) -> bool {
        match self.latest() {
            Some(p) => {
                strategy.set_params(p);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_shm::records::side;

    #[test]
    fn grid_rounds_to_ticks_and_lots() {
        let g = Grid {
            tick_units: 100,
            lot_units: 10,
        };
        assert_eq!((g.floor_px(1_234), g.ceil_px(1_234)), (1_200, 1_300));
        assert_eq!((g.floor_px(1_200), g.ceil_px(1_200)), (1_200, 1_200));
        assert_eq!(g.floor_qty(59), 50);
    }

    #[test]
    fn the_sink_numbers_orders_and_refuses_beyond_its_capacity() {
        let mut sink = OrderSink::new(7, 1000);
        sink.begin(42);
        assert_eq!(
            sink.limit(1, side::BUY, 100, 5, time_in_force::GTC),
            Some(1000)
        );
        assert_eq!(sink.cancel(1, side::BUY, 1000), Some(1001));
        for _ in 2..ORDERS_PER_EVENT_MAX {
            assert!(sink.replace(1, side::SELL, 3, 101, 5).is_some());
        }
        assert_eq!(sink.limit(1, side::BUY, 100, 5, time_in_force::GTC), None);
        assert_eq!(sink.overflowed, 1);
        let orders = sink.orders();
        assert_eq!(orders.len(), ORDERS_PER_EVENT_MAX);
        assert_eq!((orders[0].strategy_id, orders[0].created_tsc), (7, 42));
        assert_eq!(orders[1].orig_client_order_id, 1000);
        sink.begin(43);
        assert!(sink.orders().is_empty());
        assert_eq!(
            sink.next_client_order_id(),
            1000 + ORDERS_PER_EVENT_MAX as u64
        );
    }

    #[test]
    fn the_mailbox_hands_over_the_newest_params_whole() {
        #[derive(Clone, Copy, Debug, PartialEq)]
        struct P {
            a: u64,
            b: u64,
        }
        let (mut tx, mut rx) = params_mailbox::<P>();
        assert_eq!(rx.latest(), None);
        let sender = std::thread::spawn(move || {
            for i in 0..1000u64 {
                while !tx.send(P { a: i, b: i * 2 }) {
                    std::thread::yield_now();
                }
            }
        });
        let mut last = 0;
        while last < 999 {
            if let Some(p) = rx.latest() {
                assert_eq!(p.b, p.a * 2, "never half an update");
                assert!(p.a >= last);
                last = p.a;
            }
        }
        sender.join().unwrap();
    }
}
