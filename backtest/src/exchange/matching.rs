//! The simulated venue's matching: market events against our resting orders, and our requests
//! against the recorded book. Reports follow the in-process venues' conventions (as
//! `AckVenue` and the FIX session give them to the engine): a cancel is reported CANCELED
//! under the cancelled order's id, a replace REPLACED under the new id, a refusal REJECTED
//! under the request's own id.

use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_flag, order_kind, side, time_in_force,
};
use levibot_sim::filters::RejectReason;

use super::{Answer, Core, Level, Resting, SelfTradePrevention, TradeStream};
use crate::results::{FillEvent, RequestKind, ResultEvent, fee_scaled};

/// Most levels one taker order walks (a bound on its work; deeper is left unfilled).
const TAKER_LEVELS_MAX: usize = 1000;

impl Core {
    /// Whether `instrument_id`'s matching follows trades of `stream` (the first it sees).
    pub(super) fn follows(&mut self, instrument_id: u32, stream: TradeStream) -> bool {
        let Some(m) = self.markets.get_mut(instrument_id as usize) else {
            return false;
        };
        if m.trades == TradeStream::Unknown {
            m.trades = stream;
        }
        m.trades == stream
    }

    /// The market quantity at one of the book's prices is now `qty`.
    pub(super) fn on_level(&mut self, instrument_id: u32, level_side: u8, px: i64, qty: i64) {
        let Some(level) = self.levels.get_mut(&(instrument_id, level_side, px)) else {
            return;
        };
        let prev = level.market_qty;
        level.market_qty = qty;
        let unit = self.markets[instrument_id as usize].qty_unit;
        let mut ahead = f64::MIN;
        for id in &level.fifo {
            if let Some(order) = self.orders.get_mut(id) {
                self.config
                    .queue
                    .on_depth(&mut order.pos, prev as f64, qty as f64, unit);
                // A later order of ours is never ahead of an earlier one.
                order.pos.front = order.pos.front.max(ahead);
                ahead = order.pos.front;
            }
        }
    }

    /// After the book changed (an update, or a snapshot; `reload`: one that synced the book):
    /// our levels' market quantities from the book, the top, crosses.
    pub(super) fn after_book_change(&mut self, instrument_id: u32, t_ns: u64, reload: bool) {
        if self.markets.get(instrument_id as usize).is_none() {
            return;
        }
        if reload {
            let keys: Vec<(u32, u8, i64)> = self
                .levels
                .range((instrument_id, 0, i64::MIN)..=(instrument_id, u8::MAX, i64::MAX))
                .map(|(k, _)| *k)
                .collect();
            for (id, s, px) in keys {
                let qty = market_qty_at(&self.markets[id as usize].book, s, px);
                self.on_level(id, s, px, qty);
            }
        }
        let market = &self.markets[instrument_id as usize];
        let bid = market.book.best_bid().map_or(0, |l| l.px);
        let ask = market.book.best_ask().map_or(0, |l| l.px);
        self.on_top(instrument_id, bid, ask, t_ns);
    }

    /// The best bid and ask are now `bid` and `ask` (0: none): our orders they cross fill.
    pub(super) fn on_top(&mut self, instrument_id: u32, bid: i64, ask: i64, t_ns: u64) {
        let Some(m) = self.markets.get_mut(instrument_id as usize) else {
            return;
        };
        if (m.bid, m.ask) != (bid, ask) {
            m.bid = bid;
            m.ask = ask;
            if bid > 0 && ask > 0 {
                self.results.push(ResultEvent::Mid {
                    t_ns,
                    instrument_id,
                    bid_plus_ask: bid + ask,
                });
            }
        }
        // Our bids at or above the market's ask, and asks at or below its bid, were reached.
        if ask > 0 {
            self.fill_crossed_by_book(instrument_id, side::BUY, ask, t_ns);
        }
        if bid > 0 {
            self.fill_crossed_by_book(instrument_id, side::SELL, bid, t_ns);
        }
    }

    /// The best opposite price is now `opposite_px`: fills our `order_side` orders it crosses,
    /// but not with what they already took when they rested through the book.
    fn fill_crossed_by_book(
        &mut self,
        instrument_id: u32,
        order_side: u8,
        opposite_px: i64,
        t_ns: u64,
    ) {
        let buy = order_side == side::BUY;
        // One walk over our levels on that side (one tree descent, not two: this runs at every
        // top-of-book change).
        let mut ids = Vec::new();
        let side_levels =
            (instrument_id, order_side, i64::MIN)..=(instrument_id, order_side, i64::MAX);
        for (&(_, _, px), level) in self.levels.range_mut(side_levels) {
            let crossed = if buy {
                px >= opposite_px
            } else {
                px <= opposite_px
            };
            if !crossed {
                // What they took is gone once the book stops crossing them.
                level.crossed_by = None;
                continue;
            }
            let fresh = match level.crossed_by {
                None => true,
                Some(took) if buy => opposite_px < took,
                Some(took) => opposite_px > took,
            };
            if fresh {
                ids.extend_from_slice(&level.fifo);
            }
        }
        self.fill_whole(ids, t_ns);
    }

    /// Fills whole, at their own prices, our `order_side` orders priced in `from..=to`.
    fn fill_crossed(&mut self, instrument_id: u32, order_side: u8, from: i64, to: i64, t_ns: u64) {
        let crossed: Vec<u64> = self
            .levels
            .range((instrument_id, order_side, from)..=(instrument_id, order_side, to))
            .flat_map(|(_, level)| level.fifo.iter().copied())
            .collect();
        self.fill_whole(crossed, t_ns);
    }

    /// Fills the orders `ids` whole, at their own prices, as makers.
    fn fill_whole(&mut self, ids: Vec<u64>, t_ns: u64) {
        for id in ids {
            if let Some(order) = self.orders.get(&id).copied() {
                self.fill(id, order.leaves(), order.px, true, order.joined_ahead, t_ns);
            }
        }
    }

    /// A market trade of `qty` at `px`; `flags` says which side was the taker.
    pub(super) fn on_trade(
        &mut self,
        instrument_id: u32,
        px: i64,
        qty: i64,
        flags: u32,
        t_ns: u64,
    ) {
        // Buyer is maker: a seller took liquidity, so the bids traded.
        let hit = if flags & levibot_shm::records::TRADE_FLAG_BUYER_IS_MAKER != 0 {
            side::BUY
        } else {
            side::SELL
        };
        // Through our price: fills whole.
        match hit {
            side::BUY => self.fill_crossed(
                instrument_id,
                side::BUY,
                px.saturating_add(1),
                i64::MAX,
                t_ns,
            ),
            _ => self.fill_crossed(
                instrument_id,
                side::SELL,
                i64::MIN,
                px.saturating_sub(1),
                t_ns,
            ),
        }
        // At our price: the volume goes through the queue, ours in time priority.
        let Some(level) = self.levels.get(&(instrument_id, hit, px)) else {
            return;
        };
        let fifo = level.fifo.clone();
        let lot = self.markets[instrument_id as usize]
            .filters
            .lot_units
            .max(1);
        let mut taken_by_ours = 0i64;
        for id in fifo {
            let Some(order) = self.orders.get_mut(&id) else {
                continue;
            };
            let reaching = (qty - taken_by_ours).max(0);
            self.config
                .queue
                .on_trade(&mut order.pos, reaching as f64, qty as f64);
            // What went past the front, but no more than reached it now (an estimate past the
            // front, a model's split of a cancel, puts it first in line: it is not owed a
            // fill), in whole lots.
            let past = (-order.pos.front) as i64;
            let fill = (past.min(reaching) / lot * lot).min(order.leaves());
            if fill > 0 {
                let ahead = order.joined_ahead;
                order.pos.front = 0.0;
                taken_by_ours += fill;
                self.fill(id, fill, px, true, ahead, t_ns);
            }
        }
    }

    /// One request that reached the venue.
    pub(super) fn on_request(&mut self, order: &OrderRequest, t_ns: u64) {
        let kind = match RequestKind::of(order.kind) {
            Some(kind) => kind,
            None if order.kind == order_kind::MASS_CANCEL => return self.mass_cancel(order, t_ns),
            None => return self.reject(order, t_ns, "unsupported_request"),
        };
        self.results.push(ResultEvent::Order {
            t_ns,
            instrument_id: order.instrument_id,
            kind,
        });
        match kind {
            RequestKind::New => self.new_order(order, t_ns),
            RequestKind::Cancel => self.cancel(order, t_ns),
            RequestKind::Replace => self.replace(order, t_ns),
        }
    }

    fn new_order(&mut self, order: &OrderRequest, t_ns: u64) {
        let Some(market) = self.markets.get(order.instrument_id as usize) else {
            return self.reject(order, t_ns, RejectReason::UnknownInstrument.name());
        };
        if let Err(reason) = market.filters.check(
            order.side,
            order.ord_type,
            order.time_in_force,
            order.px,
            order.qty,
        ) {
            return self.reject(order, t_ns, reason.name());
        }
        if self.orders.contains_key(&order.client_order_id) {
            return self.reject(order, t_ns, RejectReason::DuplicateClientOrderId.name());
        }
        if order.flags & order_flag::POST_ONLY != 0
            && self.would_take(order.instrument_id, order.side, order.px)
        {
            return self.reject(order, t_ns, RejectReason::WouldTakeLiquidity.name());
        }
        let venue_order_id = self.next_venue_order_id;
        self.next_venue_order_id += 1;
        self.orders.insert(
            order.client_order_id,
            Resting {
                venue_order_id,
                instrument_id: order.instrument_id,
                side: order.side,
                px: order.px,
                qty: order.qty,
                cum_qty: 0,
                pos: Default::default(),
                joined_ahead: 0,
                filled: false,
            },
        );
        self.answer(order.client_order_id, exec_type::NEW, 0, 0, t_ns);
        self.match_incoming(
            order.client_order_id,
            order.ord_type,
            order.time_in_force,
            t_ns,
        );
    }

    /// Trades the order `id` against the book if it crosses, then rests what is left (GTC) or
    /// expires it. Self-trade prevention acts where the walk meets a resting order of ours.
    fn match_incoming(&mut self, id: u64, order_type: u8, tif: u8, t_ns: u64) {
        let Some(order) = self.orders.get(&id).copied() else {
            return;
        };
        let limit = match (order_type, order.side) {
            (ord_type::MARKET, side::BUY) => i64::MAX,
            (ord_type::MARKET, _) => i64::MIN,
            _ => order.px,
        };
        let steps = self.walk(&order, limit);
        let taken: i64 = steps
            .iter()
            .map(|step| match step {
                Step::Take { qty, .. } => *qty,
                Step::Meet(_) => 0,
            })
            .sum();
        if tif == time_in_force::FOK && taken < order.leaves() {
            self.results.push(ResultEvent::Reject {
                t_ns,
                reason: RejectReason::WouldNotFill.name(),
            });
            return self.finish(id, exec_type::EXPIRED, t_ns);
        }
        let stp = self.config.self_trade;
        for step in steps {
            match step {
                Step::Take { px, qty } => self.fill(id, qty, px, false, 0, t_ns),
                Step::Meet(maker) => {
                    if stp != SelfTradePrevention::ExpireTaker {
                        self.finish(maker, exec_type::EXPIRED, t_ns);
                    }
                    if stp != SelfTradePrevention::ExpireMaker {
                        self.results.push(ResultEvent::Reject {
                            t_ns,
                            reason: "self_trade_prevented",
                        });
                        return self.finish(id, exec_type::EXPIRED, t_ns);
                    }
                }
            }
        }
        if !self.orders.contains_key(&id) {
            return;
        }
        if order_type == ord_type::LIMIT && tif == time_in_force::GTC {
            self.rest(id);
        } else {
            self.finish(id, exec_type::EXPIRED, t_ns);
        }
    }

    /// What `order` would do up to `limit`, in price-time priority: take the recorded book's
    /// levels (not changed: no market impact), and meet our own resting orders on the other
    /// side. At a price where ours rest, the market quantity ahead of each (its queue estimate,
    /// in whole lots) trades first. Under `expire_taker` and `expire_both` the walk ends at the
    /// first order of ours it meets.
    fn walk(&self, order: &Resting, limit: i64) -> Vec<Step> {
        let buy = order.side == side::BUY;
        let opposite = if buy { side::SELL } else { side::BUY };
        let key = |px: i64| (order.instrument_id, opposite, px);
        let own_range = if buy {
            key(i64::MIN)..=key(limit)
        } else {
            key(limit)..=key(i64::MAX)
        };
        let mut own: Vec<i64> = self.levels.range(own_range).map(|(k, _)| k.2).collect();
        if !buy {
            own.reverse();
        }
        let market = &self.markets[order.instrument_id as usize];
        let walk = Walk {
            core: self,
            instrument_id: order.instrument_id,
            opposite,
            lot: market.filters.lot_units.max(1),
            stops: self.config.self_trade != SelfTradePrevention::ExpireMaker,
        };
        let leaves = order.leaves();
        if buy {
            let levels = market.book.asks().take(TAKER_LEVELS_MAX);
            walk.run(levels.take_while(|l| l.px <= limit), own, leaves)
        } else {
            let levels = market.book.bids().take(TAKER_LEVELS_MAX);
            walk.run(levels.take_while(|l| l.px >= limit), own, leaves)
        }
    }

    /// Puts order `id` at the back of its price's queue.
    fn rest(&mut self, id: u64) {
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        let key = (order.instrument_id, order.side, order.px);
        let market_qty = match self.levels.get(&key) {
            Some(level) => level.market_qty,
            None => market_qty_at(
                &self.markets[order.instrument_id as usize].book,
                order.side,
                order.px,
            ),
        };
        order.pos = Default::default();
        order.pos.front = market_qty as f64;
        order.joined_ahead = market_qty;
        // The book still crossing it: the walk took all of it up to its price (or the most
        // levels it walks).
        let book = &self.markets[order.instrument_id as usize].book;
        let through = if order.side == side::BUY {
            book.best_ask().map(|l| l.px).filter(|&ask| ask <= order.px)
        } else {
            book.best_bid().map(|l| l.px).filter(|&bid| bid >= order.px)
        };
        let level = self.levels.entry(key).or_insert_with(|| Level {
            market_qty,
            fifo: Vec::new(),
            crossed_by: None,
        });
        // An earlier one here took from at least as good a price (the book has crossed it
        // without a fill since): the least it took stands.
        level.crossed_by = level.crossed_by.or(through);
        level.fifo.push(id);
    }

    fn unrest(&mut self, id: u64) {
        let Some(order) = self.orders.get(&id) else {
            return;
        };
        let key = (order.instrument_id, order.side, order.px);
        if let Some(level) = self.levels.get_mut(&key) {
            level.fifo.retain(|x| *x != id);
            if level.fifo.is_empty() {
                self.levels.remove(&key);
            }
        }
    }

    fn cancel(&mut self, request: &OrderRequest, t_ns: u64) {
        if !self.orders.contains_key(&request.orig_client_order_id) {
            return self.reject(request, t_ns, RejectReason::UnknownOrder.name());
        }
        self.finish(request.orig_client_order_id, exec_type::CANCELED, t_ns);
    }

    /// Whether a limit order of ours at `px` would trade on arrival: the market's best
    /// opposite price (book or book ticker, as the venue last saw it) is at or through it, or
    /// one of our own opposite orders is.
    fn would_take(&self, instrument_id: u32, order_side: u8, px: i64) -> bool {
        let Some(m) = self.markets.get(instrument_id as usize) else {
            return false;
        };
        let (market_takes, own) = if order_side == side::BUY {
            let own = (instrument_id, side::SELL, i64::MIN)..=(instrument_id, side::SELL, px);
            (m.ask > 0 && m.ask <= px, own)
        } else {
            let own = (instrument_id, side::BUY, px)..=(instrument_id, side::BUY, i64::MAX);
            (m.bid > 0 && m.bid >= px, own)
        };
        market_takes || self.levels.range(own).next().is_some()
    }

    fn replace(&mut self, request: &OrderRequest, t_ns: u64) {
        let Some(old) = self.orders.get(&request.orig_client_order_id).copied() else {
            return self.reject(request, t_ns, RejectReason::UnknownOrder.name());
        };
        let filters = self.markets[old.instrument_id as usize].filters;
        if let Err(reason) = filters.check(
            old.side,
            ord_type::LIMIT,
            time_in_force::GTC,
            request.px,
            request.qty,
        ) {
            return self.reject(request, t_ns, reason.name());
        }
        if self.orders.contains_key(&request.client_order_id) {
            return self.reject(request, t_ns, RejectReason::DuplicateClientOrderId.name());
        }
        if request.flags & order_flag::POST_ONLY != 0
            && self.would_take(old.instrument_id, old.side, request.px)
        {
            // Refused whole: the order it would replace works on, unchanged.
            return self.reject(request, t_ns, RejectReason::WouldTakeLiquidity.name());
        }
        if request.qty <= old.cum_qty {
            // Nothing would be left: the venue cancels it.
            return self.finish(request.orig_client_order_id, exec_type::CANCELED, t_ns);
        }
        // Priority is kept only for a smaller quantity at the same price.
        let keeps_priority = request.px == old.px && request.qty <= old.qty;
        let key = (old.instrument_id, old.side, old.px);
        if let Some(level) = self.levels.get_mut(&key)
            && let Some(slot) = level
                .fifo
                .iter_mut()
                .find(|x| **x == request.orig_client_order_id)
        {
            *slot = request.client_order_id;
        }
        self.orders.remove(&request.orig_client_order_id);
        self.orders.insert(
            request.client_order_id,
            Resting {
                px: request.px,
                qty: request.qty,
                filled: false,
                ..old
            },
        );
        self.answer(request.client_order_id, exec_type::REPLACED, 0, 0, t_ns);
        if !keeps_priority {
            let new = self.orders[&request.client_order_id];
            self.orders
                .insert(request.client_order_id, Resting { px: old.px, ..new });
            self.unrest(request.client_order_id);
            self.orders.insert(request.client_order_id, new);
            self.match_incoming(
                request.client_order_id,
                ord_type::LIMIT,
                time_in_force::GTC,
                t_ns,
            );
        }
    }

    fn mass_cancel(&mut self, request: &OrderRequest, t_ns: u64) {
        let mut ids: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| {
                request.instrument_id == u32::MAX || o.instrument_id == request.instrument_id
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.finish(id, exec_type::CANCELED, t_ns);
        }
    }

    /// Fills `qty` of order `id` at `px`.
    fn fill(&mut self, id: u64, qty: i64, px: i64, maker: bool, queue_ahead: i64, t_ns: u64) {
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        let qty = qty.min(order.leaves());
        if qty <= 0 {
            return;
        }
        order.cum_qty += qty;
        let first_fill = !order.filled;
        order.filled = true;
        let order = *order;
        let signed = if order.side == side::BUY { qty } else { -qty };
        self.positions[order.instrument_id as usize] += signed;
        let fee_ppm = if maker {
            self.config.maker_fee_ppm
        } else {
            self.config.taker_fee_ppm
        };
        self.results.push(ResultEvent::Fill(FillEvent {
            t_ns,
            instrument_id: order.instrument_id,
            client_order_id: id,
            side: order.side,
            px,
            qty,
            fee_scaled: fee_scaled(px, qty, fee_ppm),
            maker,
            queue_ahead,
            order_first_fill: first_fill,
        }));
        self.answer(id, exec_type::TRADE, px, qty, t_ns);
        if order.cum_qty == order.qty {
            self.unrest(id);
            self.orders.remove(&id);
        }
    }

    /// Ends order `id` (cancelled or expired), reported under its id.
    fn finish(&mut self, id: u64, exec: u8, t_ns: u64) {
        self.answer(id, exec, 0, 0, t_ns);
        self.unrest(id);
        self.orders.remove(&id);
    }

    /// The report of order `id` as it stands (after this event).
    fn answer(&mut self, id: u64, exec: u8, last_px: i64, last_qty: i64, t_ns: u64) {
        let Some(order) = self.orders.get(&id) else {
            return;
        };
        let done = matches!(exec, exec_type::CANCELED | exec_type::EXPIRED);
        let leaves_qty = if done { 0 } else { order.leaves() };
        let ord_status = match exec {
            exec_type::CANCELED => b'4',
            exec_type::EXPIRED => b'C',
            exec_type::REPLACED => b'5',
            _ if order.cum_qty == order.qty => b'2',
            _ if order.cum_qty > 0 => b'1',
            _ => b'0',
        };
        self.answers.push(Answer {
            venue_ns: t_ns,
            report: ExecutionReport {
                client_order_id: id,
                venue_order_id: order.venue_order_id,
                px: order.px,
                last_px,
                last_qty,
                cum_qty: order.cum_qty,
                leaves_qty,
                instrument_id: order.instrument_id,
                exec_type: exec,
                ord_status,
                side: order.side,
                ..ExecutionReport::default()
            },
        });
    }

    /// Refuses `request`, reported REJECTED under its own id.
    fn reject(&mut self, request: &OrderRequest, t_ns: u64, reason: &'static str) {
        self.results.push(ResultEvent::Reject { t_ns, reason });
        self.answers.push(Answer {
            venue_ns: t_ns,
            report: ExecutionReport {
                client_order_id: request.client_order_id,
                px: request.px,
                instrument_id: request.instrument_id,
                exec_type: exec_type::REJECTED,
                ord_status: b'8',
                side: request.side,
                reject_reason: 99,
                ..ExecutionReport::default()
            },
        });
    }
}

/// One thing an incoming order does on its walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Takes `qty` of the recorded book at `px` (0: nothing, which `fill` ignores).
    Take { px: i64, qty: i64 },
    /// Meets our resting order with this client order id (self-trade prevention acts).
    Meet(u64),
}

/// An incoming order's walk over the recorded levels and our own resting orders.
struct Walk<'a> {
    core: &'a Core,
    instrument_id: u32,
    /// The side it takes from.
    opposite: u8,
    lot: i64,
    /// The walk ends at the first order of ours it meets (the taker expires).
    stops: bool,
}

impl Walk<'_> {
    /// Walks `levels` (reachable, best first) and our own levels at `own` prices (reachable,
    /// best first) with `remaining` to fill.
    fn run(
        &self,
        levels: impl Iterator<Item = levibot_shm::records::Level>,
        own: Vec<i64>,
        mut remaining: i64,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut levels = levels.peekable();
        let mut own = own.into_iter().peekable();
        // (remaining is never negative: every step takes at most it.)
        while remaining != 0 {
            let market_px = levels.peek().map(|l| l.px);
            let own_px = own.peek().copied();
            let px = match (market_px, own_px) {
                (None, None) => break,
                (Some(m), None) => m,
                (None, Some(o)) => o,
                // The better price for the taker: the lower ask, the higher bid.
                (Some(m), Some(o)) if self.opposite == side::SELL => m.min(o),
                (Some(m), Some(o)) => m.max(o),
            };
            let level_qty = match market_px == Some(px) {
                true => levels.next().map_or(0, |l| l.qty),
                false => 0,
            };
            let mut taken_here = 0;
            if own_px == Some(px) {
                own.next();
                let key = (self.instrument_id, self.opposite, px);
                let fifo = self.core.levels.get(&key).map(|l| l.fifo.as_slice());
                for &maker in fifo.unwrap_or_default() {
                    let Some(resting) = self.core.orders.get(&maker) else {
                        continue;
                    };
                    let front = resting.pos.front.max(0.0) as i64 / self.lot * self.lot;
                    let ahead = (front.min(level_qty) - taken_here).max(0);
                    if remaining <= ahead {
                        continue;
                    }
                    steps.push(Step::Take { px, qty: ahead });
                    remaining -= ahead;
                    taken_here += ahead;
                    steps.push(Step::Meet(maker));
                    if self.stops {
                        return steps;
                    }
                }
            }
            let take = remaining.min(level_qty - taken_here);
            steps.push(Step::Take { px, qty: take });
            remaining -= take;
        }
        steps
    }
}

/// The market quantity at `px` on `level_side` of `book` (0 if no level).
fn market_qty_at(book: &levibot_book::OrderBook, level_side: u8, px: i64) -> i64 {
    let found = if level_side == side::BUY {
        book.bids().take_while(|l| l.px >= px).find(|l| l.px == px)
    } else {
        book.asks().take_while(|l| l.px <= px).find(|l| l.px == px)
    };
    found.map_or(0, |l| l.qty)
}
