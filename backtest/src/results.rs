//! What a backtest measures: the events the simulated venue and the engine report
//! ([`ResultEvent`]), folded as they come into a [`Summary`] (the `--json` object) and the
//! series the HTML report draws ([`crate::report::ReportData`]). Memory is bounded whatever
//! the run's length: sums and histograms, curves sampled at a fixed interval and thinned when
//! they grow past a fixed number of points, markouts kept only until their horizon passes.
//!
//! Money is computed in the instrument's integer units (`i128`), converted to decimals of the
//! quote asset only for display.

/// A fill of one of our orders, as the simulated venue made it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FillEvent {
    /// Venue time of the fill, ns since the Unix epoch.
    pub t_ns: u64,
    pub instrument_id: u32,
    pub client_order_id: u64,
    /// `levibot_shm::records::side::BUY` or `SELL`.
    pub side: u8,
    /// Price units of the instrument.
    pub px: i64,
    /// Quantity units of the instrument.
    pub qty: i64,
    /// Fee in quote units scaled by `FEE_SCALE` (negative: a rebate).
    pub fee_scaled: i128,
    /// Maker (rested, then filled) or taker (crossed on arrival).
    pub maker: bool,
    /// Market quantity (units) ahead of the order in its price level's queue when it filled
    /// (0 for a taker fill).
    pub queue_ahead: i64,
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
    Replace,
}

/// What the venue and the engine report to the results, in time order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResultEvent {
    /// A market message was replayed (venue time).
    Message {
        t_ns: u64,
    },
    /// The mid price of an instrument changed (price units, times 2 to stay integral:
    /// `bid + ask`), venue time.
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
    Latency(LatencyEvent),
}

/// Fees are kept in quote units times this (so that basis points of a notional stay exact).
pub const FEE_SCALE: i128 = 1_000_000;
