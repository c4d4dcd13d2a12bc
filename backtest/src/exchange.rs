//! The simulated venue of a backtest: it replays the recorded market at the venue's time and
//! matches our orders against it. Its book is the recorded L2 book (the same `OrderBook` the
//! engine keeps, fed the same bytes through the same decoder); our orders are not in it. A
//! resting order of ours fills when the market trades through its queue position
//! (`queue.rs`) or when the recorded book crosses its price; an order that crosses on arrival
//! takes liquidity by walking the recorded book. Orders are checked with the simulated venue's
//! exchange filters (`levibot_sim::filters`).
//!
//! What it assumes (docs/backtest.md says it for quants):
//! - No market impact: our fills take nothing out of the recorded book or tape, so two of our
//!   orders can take the same recorded liquidity, and the market never reacts to our quotes.
//! - Our orders at one price share one FIFO: the second is behind the first, and trade volume
//!   the first took does not reach the second. A trade fills an order by what passed its
//!   queue, in whole lots and no more than the trade's volume that reached it.
//! - A resting order whose price the recorded book crosses fills whole at its own price. The
//!   rest of an order that took the recorded book up to its price, and rests there with the
//!   book still crossing it, is not filled again by that same liquidity: it fills when the book
//!   offers better than what it took, or crosses it again after leaving it (or by a trade
//!   through its price).
//! - A trade stream: `trade` or `aggTrade`, whichever an instrument shows first; the other is
//!   ignored for matching (both describe the same executions).
//! - Self-trade prevention acts where an incoming order, walking in price-time priority, meets
//!   a resting order of ours ([`SelfTradePrevention`]).

mod matching;
pub mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use levibot_book::{BookLimits, BookOutcome, OrderBook};
use levibot_gateway::binance::{Decoder, DepthSnapshot, DepthUpdate, MarketEvent};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{AggTrade, BookTicker, ExecutionReport, Trade};
use levibot_sim::filters::{FilterError, Filters};

use crate::input::{InputKind, decoded};
use crate::results::ResultEvent;
use levibot_engine::pipeline::MarketRecord;
pub use queue::{QueueModel, QueuePos};

/// What to do when our new order would trade against a resting order of ours (Binance's
/// `selfTradePreventionMode`). The new order walks the book in price-time priority and meets
/// ours at its price, after the market quantity ahead of it there; what it traded with the
/// market before that stands, and orders of ours it never reaches are not touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTradePrevention {
    /// The incoming order expires where it meets ours.
    ExpireTaker,
    /// Our resting orders it meets expire; the incoming order goes on.
    ExpireMaker,
    /// Both: the first order of ours it meets and the incoming order expire.
    ExpireBoth,
}

impl std::fmt::Display for SelfTradePrevention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SelfTradePrevention::ExpireTaker => "expire_taker",
            SelfTradePrevention::ExpireMaker => "expire_maker",
            SelfTradePrevention::ExpireBoth => "expire_both",
        })
    }
}

impl std::str::FromStr for SelfTradePrevention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expire_taker" => Ok(SelfTradePrevention::ExpireTaker),
            "expire_maker" => Ok(SelfTradePrevention::ExpireMaker),
            "expire_both" => Ok(SelfTradePrevention::ExpireBoth),
            _ => Err(format!(
                "self-trade prevention {s}: one of expire_taker, expire_maker, expire_both"
            )),
        }
    }
}

/// How the simulated venue matches and charges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExchangeConfig {
    pub queue: QueueModel,
    /// Fees in parts per million of the notional (100 = 1 bp); negative: a rebate.
    pub maker_fee_ppm: i64,
    pub taker_fee_ppm: i64,
    pub self_trade: SelfTradePrevention,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            queue: QueueModel::RiskAverse,
            maker_fee_ppm: 0,
            taker_fee_ppm: 0,
            self_trade: SelfTradePrevention::ExpireTaker,
        }
    }
}

/// Which trade stream an instrument's matching follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TradeStream {
    Unknown,
    Trade,
    AggTrade,
}

/// One instrument at the venue.
struct Market {
    book: OrderBook,
    filters: Filters,
    /// One quantity unit in the base asset (the queue models' probabilities take base-asset
    /// quantities).
    qty_unit: f64,
    /// Best bid and ask as the venue last saw them (book or ticker); 0: none.
    bid: i64,
    ask: i64,
    trades: TradeStream,
}

/// One of our orders resting at the venue.
#[derive(Clone, Copy, Debug)]
struct Resting {
    venue_order_id: u64,
    instrument_id: u32,
    side: u8,
    px: i64,
    qty: i64,
    cum_qty: i64,
    pos: QueuePos,
    /// Market quantity ahead of it when it joined its queue (reported with its fills).
    joined_ahead: i64,
    /// It has filled since it was placed (a replace places a new order, with its own first
    /// fill, though the cumulative quantity carries over).
    filled: bool,
}

impl Resting {
    /// What is left to fill.
    fn leaves(&self) -> i64 {
        self.qty - self.cum_qty
    }
}

/// Our orders at one price: the market quantity there, and ours in time priority.
#[derive(Clone, Debug, Default)]
struct Level {
    market_qty: i64,
    fifo: Vec<u64>,
    /// Set when ours rested here through the recorded book (the rest of an order that took
    /// the book up to its price): the best opposite price then. The book crossing them at that
    /// price or worse is the liquidity they already took, not new sellers (buyers); it is
    /// cleared once the book's best opposite price no longer crosses them (an empty side, as
    /// while the book resyncs, says nothing).
    crossed_by: Option<i64>,
}

/// A report the venue made, at its time.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub venue_ns: u64,
    pub report: ExecutionReport,
}

/// Everything but the decoder (whose output borrows it while the rest changes).
struct Core {
    config: ExchangeConfig,
    markets: Vec<Market>,
    /// By client order id. Hashed by foldhash with a fixed seed, not std's SipHash: the
    /// venue looks an order up several times a request, and SipHash was a fortieth of a
    /// decoded backtest's instructions (callgrind); fixed, the map is the same every run.
    orders: HashMap<u64, Resting, foldhash::fast::FixedState>,
    /// (instrument, side, px) -> our orders there.
    levels: BTreeMap<(u32, u8, i64), Level>,
    next_venue_order_id: u64,
    /// Our position per instrument, the venue's own view (quantity units, + long).
    positions: Vec<i64>,
    answers: Vec<Answer>,
    results: Vec<ResultEvent>,
}

/// A market message as the venue applies it: decoded once, when it is read (from the venue's
/// bytes, or from a journal's decoded records), its levels in buffers reused from one message
/// to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VenueMessage {
    pub event: VenueEvent,
    /// A depth update's or snapshot's bids, then asks (quantity 0 removes a level).
    pub bids: Vec<levibot_shm::records::Level>,
    pub asks: Vec<levibot_shm::records::Level>,
}

/// What a [`VenueMessage`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VenueEvent {
    /// Nothing for the venue (a trading change; a snapshot that does not decode).
    #[default]
    None,
    /// A stream message the decoder skips or refuses: counted as a message, nothing more.
    Undecoded,
    Snapshot {
        instrument_id: u32,
        last_update_id: u64,
    },
    Depth {
        instrument_id: u32,
        event_time_ms: u64,
        first_update_id: u64,
        final_update_id: u64,
    },
    BookTicker(BookTicker),
    Trade(Trade),
    AggTrade(AggTrade),
}

impl VenueEvent {
    /// Whether it came from the market-data stream (not a snapshot, not a trading change).
    pub fn is_stream(&self) -> bool {
        !matches!(self, VenueEvent::None | VenueEvent::Snapshot { .. })
    }
}

/// The simulated venue.
pub struct Exchange {
    decoder: Decoder,
    core: Core,
    /// Receive time minus venue time of each instrument's last message that said its venue
    /// time (for those that do not: Binance's book ticker), ns.
    last_gap_ns: Vec<u64>,
}

/// Why an exchange could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Filters(#[from] FilterError),
    #[error("book: {0}")]
    Book(#[from] levibot_book::BookError),
}

impl Exchange {
    pub fn new(
        instruments: &InstrumentTable,
        config: ExchangeConfig,
    ) -> Result<Exchange, ExchangeError> {
        let mut markets = Vec::with_capacity(instruments.len());
        for i in instruments.iter() {
            markets.push(Market {
                book: OrderBook::new(i.id, BookLimits::DEFAULT)?,
                filters: Filters::of(i)?,
                qty_unit: i.qty_scale.mantissa as f64 / 10f64.powi(i32::from(i.qty_scale.exp)),
                bid: 0,
                ask: 0,
                trades: TradeStream::Unknown,
            });
        }
        Ok(Exchange {
            last_gap_ns: vec![0; markets.len()],
            decoder: Decoder::new(instruments.clone()),
            core: Core {
                config,
                positions: vec![0; markets.len()],
                markets,
                orders: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x000b_de25)),
                levels: BTreeMap::new(),
                next_venue_order_id: 1,
                answers: Vec::new(),
                results: Vec::new(),
            },
        })
    }

    /// A market message at the venue's time `t_ns`, in the venue's bytes: decoded, then
    /// applied ([`apply`](Self::apply)). A message that does not decode is skipped (the engine
    /// counts it).
    /// (The run decodes once, when it reads a message: this is the tests' shorthand.)
    #[cfg(test)]
    pub(crate) fn on_market(
        &mut self,
        kind: InputKind,
        symbol: Option<&str>,
        bytes: &[u8],
        t_ns: u64,
    ) {
        let mut message = VenueMessage::default();
        let id = symbol
            .and_then(|s| self.decoder.instruments().find(s.as_bytes()))
            .map(|i| i.id);
        self.decode(kind, id, bytes, &mut message);
        self.apply(&message, t_ns);
    }

    /// Decodes a market message for the venue, once, as it is read: a stream message, or the
    /// REST snapshot of instrument `snapshot_of`. What does not decode becomes
    /// [`VenueEvent::Undecoded`] (a stream message) or [`VenueEvent::None`].
    pub fn decode(
        &mut self,
        kind: InputKind,
        snapshot_of: Option<u32>,
        bytes: &[u8],
        message: &mut VenueMessage,
    ) {
        message.bids.clear();
        message.asks.clear();
        message.event = match kind {
            InputKind::Trading => VenueEvent::None,
            InputKind::Decoded(record_type) => {
                let mut event = VenueEvent::Undecoded;
                for record in decoded::market_records(record_type, bytes) {
                    match record {
                        MarketRecord::Depth(d) => {
                            if d.chunk == 0 {
                                event = VenueEvent::Depth {
                                    instrument_id: d.instrument_id,
                                    event_time_ms: d.event_time_ms,
                                    first_update_id: d.first_update_id,
                                    final_update_id: d.final_update_id,
                                };
                            }
                            message.bids.extend_from_slice(d.bids());
                            message.asks.extend_from_slice(d.asks());
                        }
                        MarketRecord::BookTicker(t) => event = VenueEvent::BookTicker(t),
                        MarketRecord::Trade(t) => event = VenueEvent::Trade(t),
                        MarketRecord::AggTrade(t) => event = VenueEvent::AggTrade(t),
                        MarketRecord::Snapshot(_) | MarketRecord::Resync | MarketRecord::Stale => {}
                    }
                }
                event
            }
            InputKind::Snapshot => {
                let decoded = snapshot_of.and_then(|id| {
                    let snapshot = self.decoder.decode_snapshot(bytes, id).ok()?;
                    message.bids.extend_from_slice(snapshot.bids);
                    message.asks.extend_from_slice(snapshot.asks);
                    Some(VenueEvent::Snapshot {
                        instrument_id: id,
                        last_update_id: snapshot.last_update_id,
                    })
                });
                decoded.unwrap_or(VenueEvent::None)
            }
            InputKind::Stream => match self.decoder.decode(bytes, 0) {
                Ok(MarketEvent::Depth(d)) => {
                    message.bids.extend_from_slice(d.bids);
                    message.asks.extend_from_slice(d.asks);
                    VenueEvent::Depth {
                        instrument_id: d.instrument_id,
                        event_time_ms: d.event_time_ms,
                        first_update_id: d.first_update_id,
                        final_update_id: d.final_update_id,
                    }
                }
                Ok(MarketEvent::BookTicker(t)) => VenueEvent::BookTicker(t),
                Ok(MarketEvent::Trade(t)) => VenueEvent::Trade(t),
                Ok(MarketEvent::AggTrade(t)) => VenueEvent::AggTrade(t),
                Ok(MarketEvent::Skipped(_)) | Err(_) => VenueEvent::Undecoded,
            },
        };
    }

    /// A decoded market message at the venue's time `t_ns`: the book moves, our resting
    /// orders may fill.
    pub fn apply(&mut self, message: &VenueMessage, t_ns: u64) {
        let core = &mut self.core;
        if message.event.is_stream() {
            core.results.push(ResultEvent::Message { t_ns });
        }
        match message.event {
            VenueEvent::None | VenueEvent::Undecoded => {}
            VenueEvent::Snapshot {
                instrument_id: id,
                last_update_id,
            } => {
                let Some(market) = core.markets.get_mut(id as usize) else {
                    return;
                };
                let outcome = market.book.apply_snapshot(&DepthSnapshot {
                    instrument_id: id,
                    last_update_id,
                    bids: &message.bids,
                    asks: &message.asks,
                });
                // A snapshot the book refuses (not best first, crossed, older than the
                // diffs) leaves it empty: it says nothing of the quantity ahead of ours.
                let synced = matches!(outcome, Ok(BookOutcome::Applied));
                core.after_book_change(id, t_ns, synced);
            }
            VenueEvent::Depth {
                instrument_id: id,
                event_time_ms,
                first_update_id,
                final_update_id,
            } => {
                let Some(market) = core.markets.get_mut(id as usize) else {
                    return;
                };
                let outcome = market.book.apply_update(&DepthUpdate {
                    instrument_id: id,
                    recv_tsc: 0,
                    event_time_ms,
                    first_update_id,
                    final_update_id,
                    bids: &message.bids,
                    asks: &message.asks,
                });
                // A stale diff (older than the book: the stream lags a snapshot) does not say
                // the levels' quantities now. Others do, in sequence or not.
                if outcome != BookOutcome::Stale {
                    for (side, levels) in [
                        (levibot_shm::records::side::BUY, &message.bids),
                        (levibot_shm::records::side::SELL, &message.asks),
                    ] {
                        for level in levels {
                            core.on_level(id, side, level.px, level.qty);
                        }
                    }
                }
                core.after_book_change(id, t_ns, false);
            }
            VenueEvent::BookTicker(t) => {
                core.on_top(t.instrument_id, t.bid_px, t.ask_px, t_ns);
            }
            VenueEvent::Trade(t) => {
                if core.follows(t.instrument_id, TradeStream::Trade) {
                    core.on_trade(t.instrument_id, t.px, t.qty, t.flags, t_ns);
                }
            }
            VenueEvent::AggTrade(t) => {
                if core.follows(t.instrument_id, TradeStream::AggTrade) {
                    core.on_trade(t.instrument_id, t.px, t.qty, t.flags, t_ns);
                }
            }
        }
    }

    /// When the venue made a stream message received at `recv_ns`, as the message says: a
    /// depth update at its event time, a trade at its trade time, a book ticker (which says
    /// none) its instrument's last gap before it was received. Never after `recv_ns`.
    /// (The tests' shorthand for [`decode`](Self::decode) then
    /// [`venue_time_ns`](Self::venue_time_ns).)
    #[cfg(test)]
    pub(crate) fn recorded_venue_time_ns(&mut self, bytes: &[u8], recv_ns: u64) -> u64 {
        let mut message = VenueMessage::default();
        self.decode(InputKind::Stream, None, bytes, &mut message);
        self.venue_time_ns(&message, recv_ns)
    }

    /// When the venue made a decoded stream message received at `recv_ns`, as the message
    /// says: a depth update at its event time, a trade at its trade time, a book ticker (which
    /// says none) its instrument's last gap before it was received. Never after `recv_ns`.
    pub fn venue_time_ns(&mut self, message: &VenueMessage, recv_ns: u64) -> u64 {
        let said = match message.event {
            VenueEvent::Depth {
                instrument_id,
                event_time_ms,
                ..
            } => Some((instrument_id, event_time_ms)),
            VenueEvent::Trade(t) => Some((t.instrument_id, t.trade_time_ms)),
            VenueEvent::AggTrade(t) => Some((t.instrument_id, t.trade_time_ms)),
            VenueEvent::BookTicker(t) => {
                let gap = self.last_gap_ns.get(t.instrument_id as usize).copied();
                return recv_ns.saturating_sub(gap.unwrap_or(0));
            }
            _ => None,
        };
        match said {
            Some((id, ms)) if ms > 0 => {
                let venue_ns = ms.saturating_mul(1_000_000).min(recv_ns);
                if let Some(gap) = self.last_gap_ns.get_mut(id as usize) {
                    *gap = recv_ns - venue_ns;
                }
                venue_ns
            }
            _ => recv_ns,
        }
    }

    /// An order request that reached the venue at `t_ns`.
    pub fn on_request(&mut self, order: &levibot_shm::records::OrderRequest, t_ns: u64) {
        self.core.on_request(order, t_ns);
    }

    /// The reports made since the last call, in the order made.
    pub fn drain_answers(&mut self) -> std::vec::Drain<'_, Answer> {
        self.core.answers.drain(..)
    }

    /// What the results get, in the order it happened.
    pub fn drain_results(&mut self) -> std::vec::Drain<'_, ResultEvent> {
        self.core.results.drain(..)
    }

    /// Our position in `instrument_id`, as the venue sees it.
    pub fn position(&self, instrument_id: u32) -> i64 {
        self.core
            .positions
            .get(instrument_id as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Client order ids of our orders working at the venue, sorted.
    pub fn working_order_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.core.orders.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}
