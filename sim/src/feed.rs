//! What the simulated venue publishes, in Binance Spot's formats: the matching engine's level
//! and trade updates become combined-stream messages (`<symbol>@depth@100ms`, `@bookTicker`,
//! `@aggTrade`), and its books become REST depth snapshots (`/api/v3/depth`). The two agree:
//! a snapshot's `lastUpdateId` is the book's update id, and each depth message carries the
//! update ids `U..=u` of the changes it holds, so a client following Binance's procedure
//! (drop `u <= lastUpdateId`, then each `U` = previous `u` + 1) rebuilds the venue's book.
//!
//! Decimals are written exactly from integer units with the instrument's precision (Binance
//! prints every price and quantity with that many decimals: `"0.35130000"`).

use std::fmt::Write as _;

use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::Instrument;
use levibot_shm::records::side;

use super::matching::{MarketUpdate, Top};

/// One instrument's names and scales for the feed.
#[derive(Clone, Debug)]
struct Names {
    /// `NKNUSDT`.
    symbol: String,
    /// `nknusdt`.
    stream: String,
    price_scale: Scale,
    qty_scale: Scale,
}

/// Level changes of one instrument waiting to be published as one depth message.
#[derive(Clone, Debug, Default)]
struct PendingDepth {
    first_update_id: Option<u64>,
    final_update_id: u64,
    /// Latest quantity per price, in the order first changed.
    bids: Vec<(i64, i64)>,
    asks: Vec<(i64, i64)>,
}

impl PendingDepth {
    fn set(levels: &mut Vec<(i64, i64)>, px: i64, qty: i64) {
        match levels.iter_mut().find(|(p, _)| *p == px) {
            Some(level) => level.1 = qty,
            None => levels.push((px, qty)),
        }
    }
}

/// Writes the venue's market data as Binance messages.
#[derive(Debug)]
pub struct FeedEncoder {
    names: Vec<Names>,
    pending: Vec<PendingDepth>,
    /// The last trade of each instrument, for aggTrade's first/last trade ids.
    next_agg_id: u64,
}

impl FeedEncoder {
    /// For `instruments`, indexed by instrument id.
    pub fn new(instruments: &[&Instrument]) -> FeedEncoder {
        FeedEncoder {
            names: instruments
                .iter()
                .map(|i| Names {
                    symbol: i.symbol.as_str().to_owned(),
                    stream: i.symbol.as_str().to_ascii_lowercase(),
                    price_scale: i.price_scale,
                    qty_scale: i.qty_scale,
                })
                .collect(),
            pending: vec![PendingDepth::default(); instruments.len()],
            next_agg_id: 1,
        }
    }

    /// The combined-stream names of `instrument_id` this feed publishes.
    pub fn streams(&self, instrument_id: u32) -> Option<[String; 3]> {
        let n = self.names.get(instrument_id as usize)?;
        Some([
            format!("{}@depth@100ms", n.stream),
            format!("{}@bookTicker", n.stream),
            format!("{}@aggTrade", n.stream),
        ])
    }

    fn decimal(units: i64, scale: Scale) -> String {
        // Scale::to_decimal keeps the scale: 3513 units of 10^-8 print as "0.00003513".
        scale.to_decimal(units).to_string()
    }

    fn levels(out: &mut String, levels: &[(i64, i64)], n: &Names) {
        out.push('[');
        for (i, &(px, qty)) in levels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                r#"["{}","{}"]"#,
                Self::decimal(px, n.price_scale),
                Self::decimal(qty, n.qty_scale)
            );
        }
        out.push(']');
    }

    /// Takes the engine's updates: level changes wait for [`flush_depth`](Self::flush_depth);
    /// each trade is written at once as an `aggTrade` message into `messages`.
    pub fn apply(
        &mut self,
        updates: &[MarketUpdate],
        event_time_ms: u64,
        messages: &mut Vec<String>,
    ) {
        for update in updates {
            match *update {
                MarketUpdate::Level {
                    instrument_id,
                    side: level_side,
                    px,
                    qty,
                    update_id,
                } => {
                    let Some(p) = self.pending.get_mut(instrument_id as usize) else {
                        continue;
                    };
                    p.first_update_id.get_or_insert(update_id);
                    p.final_update_id = update_id;
                    let levels = if level_side == side::BUY {
                        &mut p.bids
                    } else {
                        &mut p.asks
                    };
                    PendingDepth::set(levels, px, qty);
                }
                MarketUpdate::Trade {
                    instrument_id,
                    trade_id,
                    px,
                    qty,
                    buyer_is_maker,
                } => {
                    let Some(n) = self.names.get(instrument_id as usize) else {
                        continue;
                    };
                    let agg_id = self.next_agg_id;
                    self.next_agg_id += 1;
                    messages.push(format!(
                        r#"{{"stream":"{}@aggTrade","data":{{"e":"aggTrade","E":{event_time_ms},"s":"{}","a":{agg_id},"p":"{}","q":"{}","f":{trade_id},"l":{trade_id},"T":{event_time_ms},"m":{buyer_is_maker},"M":true}}}}"#,
                        n.stream,
                        n.symbol,
                        Self::decimal(px, n.price_scale),
                        Self::decimal(qty, n.qty_scale),
                    ));
                }
            }
        }
    }

    /// Writes each instrument's pending level changes as one `depthUpdate` message (as
    /// `@depth@100ms` does every 100 ms), and its new top of book as a `bookTicker`.
    /// `top(instrument_id)` gives the book's best bid and ask `(px, qty)`.
    pub fn flush_depth(
        &mut self,
        event_time_ms: u64,
        top: impl Fn(u32) -> Top,
        messages: &mut Vec<String>,
    ) {
        for (id, pending) in self.pending.iter_mut().enumerate() {
            let Some(first) = pending.first_update_id.take() else {
                continue;
            };
            let n = &self.names[id];
            let mut msg = format!(
                r#"{{"stream":"{}@depth@100ms","data":{{"e":"depthUpdate","E":{event_time_ms},"s":"{}","U":{first},"u":{},"b":"#,
                n.stream, n.symbol, pending.final_update_id
            );
            Self::levels(&mut msg, &pending.bids, n);
            msg.push_str(r#","a":"#);
            Self::levels(&mut msg, &pending.asks, n);
            msg.push_str("}}");
            messages.push(msg);
            pending.bids.clear();
            pending.asks.clear();
            if let (Some((bid_px, bid_qty)), Some((ask_px, ask_qty))) = top(id as u32) {
                messages.push(format!(
                    r#"{{"stream":"{}@bookTicker","data":{{"u":{},"s":"{}","b":"{}","B":"{}","a":"{}","A":"{}"}}}}"#,
                    n.stream,
                    pending.final_update_id,
                    n.symbol,
                    Self::decimal(bid_px, n.price_scale),
                    Self::decimal(bid_qty, n.qty_scale),
                    Self::decimal(ask_px, n.price_scale),
                    Self::decimal(ask_qty, n.qty_scale),
                ));
            }
        }
    }

    /// A REST depth snapshot (`/api/v3/depth`) of levels best first, as of `last_update_id`.
    pub fn snapshot(
        &self,
        instrument_id: u32,
        last_update_id: u64,
        bids: &[(i64, i64)],
        asks: &[(i64, i64)],
    ) -> Option<String> {
        let n = self.names.get(instrument_id as usize)?;
        let mut body = format!(r#"{{"lastUpdateId":{last_update_id},"bids":"#);
        Self::levels(&mut body, bids, n);
        body.push_str(r#","asks":"#);
        Self::levels(&mut body, asks, n);
        body.push('}');
        Some(body)
    }
}
