//! What a backtest measures: the events the simulated venue and the engine report
//! ([`ResultEvent`]), folded as they come by [`Results`] into a [`Summary`] (the `--json`
//! object) and the series the HTML report draws ([`crate::report::ReportData`]). Memory is
//! bounded whatever the run's length: sums and histograms, curves sampled at a fixed interval
//! and thinned when they grow past a fixed number of points, fills kept for their markouts
//! only until their horizons pass (and no more than a fixed number at once), the fills drawn
//! thinned past a fixed number. The same events give the same output to the bit.
//!
//! Money is computed exactly in the instrument's integer units (`i128`): cash in notional
//! units (one price unit times one quantity unit of the quote asset), fees and PnL in fee
//! units (a notional unit over [`FEE_SCALE`]), sums over instruments in the finest of their
//! fee units. It is converted to the nearest `f64` of the quote asset only for output.
//!
//! Times are the venue's, ns since the Unix epoch, except [`LatencyEvent`]'s (the engine's
//! local clock), which do not move the results' clock.

/// A fill of one of our orders, as the simulated venue made it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FillEvent {
    /// Venue time of the fill, ns since the Unix epoch.
    pub t_ns: u64,
    pub instrument_id: u32,
    pub client_order_id: u64,
    /// `levibot_shm::records::side::BUY` or `SELL`.
    pub side: u8,
    /// Price in price units of the instrument (`price_scale`: quote asset per base asset).
    pub px: i64,
    /// Quantity filled in quantity units of the instrument (`qty_scale`: base asset), > 0.
    pub qty: i64,
    /// Fee charged for this fill in fee units: one fee unit is one notional unit (a price unit
    /// times a quantity unit, of the quote asset) over [`FEE_SCALE`], so a fee of
    /// `rate_ppm` millionths of the notional is exactly `px x qty x rate_ppm` (see
    /// [`fee_scaled`]). Negative: a rebate received.
    pub fee_scaled: i128,
    /// Maker (rested, then filled) or taker (crossed on arrival).
    pub maker: bool,
    /// Market quantity (units) ahead of the order in its price level's queue when it filled
    /// (0 for a taker fill).
    pub queue_ahead: i64,
    /// This is the first fill of its order (the order had filled nothing before): counts the
    /// orders filled at least in part (the fill ratio) without remembering every order.
    pub order_first_fill: bool,
}

/// One order's round trip as the engine saw it: sent at local time, answered (ack or
/// reject) at local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyEvent {
    pub kind: RequestKind,
    /// Local time the request left, and the first answer came back, ns.
    pub sent_ns: u64,
    pub answered_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    New,
    Cancel,
    /// Cancel an order and place another in its stead (a new order, with its own first fill).
    Replace,
}

/// What the venue and the engine report to the results, in venue time order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResultEvent {
    /// A market message was replayed (venue time).
    Message {
        t_ns: u64,
    },
    /// The mid price of an instrument changed (price units, times 2 to stay integral:
    /// `bid + ask`), venue time. Sent when the best bid or ask changes while the book has
    /// both; the mid holds until the next one (no mid while a side is empty).
    Mid {
        t_ns: u64,
        instrument_id: u32,
        bid_plus_ask: i64,
    },
    /// An order request reached the venue (new, cancel or replace).
    Order {
        t_ns: u64,
        instrument_id: u32,
        kind: RequestKind,
    },
    Fill(FillEvent),
    /// The venue refused a request; `reason` is a short stable name (`post_only_would_cross`,
    /// `price_off_tick`, ...), or risk refused it (`risk.<check>`).
    Reject {
        t_ns: u64,
        reason: &'static str,
    },
    /// Not in venue time order (its times are the engine's local clock).
    Latency(LatencyEvent),
}

impl ResultEvent {
    /// Venue time of the event (`None` for [`ResultEvent::Latency`]).
    pub fn t_ns(&self) -> Option<u64> {
        match *self {
            ResultEvent::Message { t_ns }
            | ResultEvent::Mid { t_ns, .. }
            | ResultEvent::Order { t_ns, .. }
            | ResultEvent::Reject { t_ns, .. } => Some(t_ns),
            ResultEvent::Fill(f) => Some(f.t_ns),
            ResultEvent::Latency(_) => None,
        }
    }
}

/// Fee units per notional unit: a fee rate in millionths of the notional stays exact.
pub const FEE_SCALE: i128 = 1_000_000;
/// `FEE_SCALE = 10^FEE_SCALE_DIGITS`.
pub const FEE_SCALE_DIGITS: u32 = 6;
const _: () = assert!(10i128.pow(FEE_SCALE_DIGITS) == FEE_SCALE);

/// The fee of a fill of `qty` at `px` (the instrument's units) at `rate_ppm` millionths of its
/// notional (10 bps = 1,000; a rebate is negative), in fee units: `px x qty x rate_ppm`.
pub fn fee_scaled(px: i64, qty: i64, rate_ppm: i64) -> i128 {
    i128::from(px) * i128::from(qty) * i128::from(rate_ppm)
}
