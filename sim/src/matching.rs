//! The simulated venue's matching engine: one price-time-priority limit order book per
//! instrument, with the instrument's exchange filters. It turns order entry (new, cancel,
//! replace, mass cancel) into events: what each order's owner is told (acks, fills, cancels,
//! rejects) and what the market-data feed publishes (level changes with Binance-style update
//! ids, trades). Prices and quantities are the instrument's integer units, as everywhere.
//!
//! A test tool, not the daemon: it favours clarity (ordered maps, queues) over the hot path's
//! rules, but every input is checked and nothing panics on a bad order.

use std::collections::{BTreeMap, HashMap, VecDeque};

use levibot_gateway::instrument::Instrument;
use levibot_shm::records::{ord_type, side, time_in_force};

pub use crate::filters::{FilterError, Filters, RejectReason};

/// A price level's price and total quantity.
pub type LevelTotal = (i64, i64);
/// The best bid and ask levels, if any.
pub type Top = (Option<LevelTotal>, Option<LevelTotal>);

/// An order as the venue receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The session (or synthetic trader) the order belongs to.
    pub owner: u32,
    pub client_order_id: u64,
    pub instrument_id: u32,
    /// `side::BUY` or `side::SELL`.
    pub side: u8,
    /// `ord_type::LIMIT` or `ord_type::MARKET`.
    pub ord_type: u8,
    /// `time_in_force::{GTC, IOC, FOK}`.
    pub time_in_force: u8,
    /// Ignored for market orders.
    pub px: i64,
    pub qty: i64,
    /// Post-only (FIX ExecInst 6): refused if it would take liquidity on arrival.
    pub post_only: bool,
}

/// What happened to an order, for its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// Resting (or about to fill): the venue's order id and the order's quantity.
    Accepted {
        venue_order_id: u64,
        qty: i64,
    },
    /// Filled `last_qty` at `last_px`; `leaves_qty` still working.
    Filled {
        venue_order_id: u64,
        last_px: i64,
        last_qty: i64,
        cum_qty: i64,
        leaves_qty: i64,
    },
    /// No longer working: cancelled by request, by a replace, or the unfilled rest of an IOC.
    Canceled {
        venue_order_id: u64,
        cum_qty: i64,
    },
    /// The order now has a new client order id, price and quantity.
    Replaced {
        venue_order_id: u64,
        orig_client_order_id: u64,
        leaves_qty: i64,
    },
    Rejected {
        reason: RejectReason,
    },
    /// A cancel (or, with `replace`, a replace) request was refused; the order (if any) is
    /// unchanged.
    CancelRejected {
        orig_client_order_id: u64,
        reason: RejectReason,
        replace: bool,
    },
}

/// One event, and whom it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notice {
    pub owner: u32,
    pub client_order_id: u64,
    pub instrument_id: u32,
    pub side: u8,
    /// The order's limit price (0 for market orders).
    pub px: i64,
    pub event: OrderEvent,
}

/// What the market-data feed publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketUpdate {
    /// The total quantity at a price level is now `qty` (0: the level is gone), as of book
    /// update `update_id` (one id per change, Binance's `u`).
    Level {
        instrument_id: u32,
        side: u8,
        px: i64,
        qty: i64,
        update_id: u64,
    },
    /// A trade; `buyer_is_maker` as in Binance's `m`.
    Trade {
        instrument_id: u32,
        trade_id: u64,
        px: i64,
        qty: i64,
        buyer_is_maker: bool,
    },
}

/// Everything one request caused, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub notices: Vec<Notice>,
    pub market: Vec<MarketUpdate>,
}

/// A resting order.
#[derive(Clone, Copy, Debug)]
struct Resting {
    venue_order_id: u64,
    owner: u32,
    client_order_id: u64,
    qty: i64,
    cum_qty: i64,
    /// Sum of `px x qty` over its fills: its average price is this over `cum_qty`.
    filled_px_qty: i128,
}

/// What an order has filled: quantity, and the sum of `px x qty` over its fills.
type Filled = (i64, i128);

/// One working order as the venue reports its status (FIX Order Status, ExecType I).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingOrder {
    pub client_order_id: u64,
    pub venue_order_id: u64,
    pub instrument_id: u32,
    pub side: u8,
    pub px: i64,
    /// Its total quantity (FIX OrderQty): `cum_qty` + what is left.
    pub qty: i64,
    pub cum_qty: i64,
    /// The average price of its fills, rounded down to a price unit (0 before any fill).
    pub avg_px: i64,
}

/// One instrument's book.
#[derive(Debug)]
struct Book {
    filters: Filters,
    /// Price -> orders in time priority.
    bids: BTreeMap<i64, VecDeque<Resting>>,
    asks: BTreeMap<i64, VecDeque<Resting>>,
    update_id: u64,
}

/// Where a working order is.
#[derive(Clone, Copy, Debug)]
struct Location {
    instrument_id: u32,
    side: u8,
    px: i64,
}

/// Matching for every instrument of the venue.
#[derive(Debug)]
pub struct MatchingEngine {
    books: Vec<Book>,
    working: HashMap<(u32, u64), Location>,
    /// Each owner's position per instrument (bought - sold, quantity units): the venue's
    /// own view, which a client's books are checked against.
    positions: HashMap<(u32, u32), i64>,
    next_venue_order_id: u64,
    next_trade_id: u64,
}

impl MatchingEngine {
    /// Books for `instruments` (ids `0..n`, as an `InstrumentTable` numbers them), each starting
    /// at update id `first_update_id`.
    pub fn new(instruments: &[&Instrument], first_update_id: u64) -> Result<Self, FilterError> {
        let mut books = Vec::with_capacity(instruments.len());
        for (i, instrument) in instruments.iter().enumerate() {
            let symbol = instrument.symbol.as_str();
            if instrument.id as usize != i {
                return Err(FilterError {
                    symbol: symbol.to_owned(),
                    reason: format!("id {} where {i} was expected", instrument.id),
                });
            }
            books.push(Book {
                filters: Filters::of(instrument)?,
                bids: BTreeMap::new(),
                asks: BTreeMap::new(),
                update_id: first_update_id,
            });
        }
        Ok(MatchingEngine {
            books,
            working: HashMap::new(),
            positions: HashMap::new(),
            next_venue_order_id: 1,
            next_trade_id: 1,
        })
    }

    /// The book's last update id (Binance's `lastUpdateId` of a snapshot).
    pub fn update_id(&self, instrument_id: u32) -> Option<u64> {
        self.books.get(instrument_id as usize).map(|b| b.update_id)
    }

    /// Aggregated levels, best first, at most `depth` a side: (bids, asks) as (px, qty).
    pub fn depth(
        &self,
        instrument_id: u32,
        depth: usize,
    ) -> Option<(Vec<LevelTotal>, Vec<LevelTotal>)> {
        let book = self.books.get(instrument_id as usize)?;
        let total = |q: &VecDeque<Resting>| q.iter().map(|o| o.qty - o.cum_qty).sum::<i64>();
        let bids = book
            .bids
            .iter()
            .rev()
            .take(depth)
            .map(|(&px, q)| (px, total(q)))
            .collect();
        let asks = book
            .asks
            .iter()
            .take(depth)
            .map(|(&px, q)| (px, total(q)))
            .collect();
        Some((bids, asks))
    }

    /// The smallest quantity on the lot grid that the filters accept at `px` (min qty and min
    /// notional).
    pub fn min_qty_at(&self, instrument_id: u32, px: i64) -> Option<i64> {
        let f = &self.books.get(instrument_id as usize)?.filters;
        if px <= 0 {
            return None;
        }
        let for_notional = (f.notional_min + px as i128 - 1) / px as i128;
        let qty = (for_notional as i64).max(f.qty_min).max(f.lot_units);
        Some((qty + f.lot_units - 1) / f.lot_units * f.lot_units)
    }

    /// The tick and lot of an instrument, in its units.
    pub fn grid(&self, instrument_id: u32) -> Option<(i64, i64)> {
        let f = &self.books.get(instrument_id as usize)?.filters;
        Some((f.tick_units, f.lot_units))
    }

    /// Best bid and ask with their total quantities.
    pub fn top_levels(&self, instrument_id: u32) -> Top {
        match self.depth(instrument_id, 1) {
            Some((bids, asks)) => (bids.first().copied(), asks.first().copied()),
            None => (None, None),
        }
    }

    /// Orders working for `owner`.
    pub fn working_orders_of(&self, owner: u32) -> usize {
        self.working.keys().filter(|(o, _)| *o == owner).count()
    }

    /// The client order ids of `owner`'s working orders, sorted.
    pub fn working_order_ids_of(&self, owner: u32) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .working
            .keys()
            .filter(|(o, _)| *o == owner)
            .map(|(_, id)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// `owner`'s working orders (of one instrument, or all with `None`) as a status report
    /// gives them, by client order id.
    pub fn working_orders_detail_of(
        &self,
        owner: u32,
        instrument_id: Option<u32>,
    ) -> Vec<WorkingOrder> {
        let mut orders: Vec<WorkingOrder> = self
            .working
            .iter()
            .filter(|((o, _), at)| {
                *o == owner && instrument_id.is_none_or(|i| i == at.instrument_id)
            })
            .filter_map(|(&(_, client_order_id), at)| {
                let book = self.books.get(at.instrument_id as usize)?;
                let levels = if at.side == side::BUY {
                    &book.bids
                } else {
                    &book.asks
                };
                let resting = levels
                    .get(&at.px)?
                    .iter()
                    .find(|r| r.owner == owner && r.client_order_id == client_order_id)?;
                let avg_px = if resting.cum_qty > 0 {
                    (resting.filled_px_qty / resting.cum_qty as i128) as i64
                } else {
                    0
                };
                Some(WorkingOrder {
                    client_order_id,
                    venue_order_id: resting.venue_order_id,
                    instrument_id: at.instrument_id,
                    side: at.side,
                    px: at.px,
                    qty: resting.qty,
                    cum_qty: resting.cum_qty,
                    avg_px,
                })
            })
            .collect();
        orders.sort_unstable_by_key(|o| o.client_order_id);
        orders
    }

    /// `owner`'s position in `instrument_id` from its fills here (bought - sold).
    pub fn position_of(&self, owner: u32, instrument_id: u32) -> i64 {
        self.positions
            .get(&(owner, instrument_id))
            .copied()
            .unwrap_or(0)
    }

    /// Orders working, every owner's.
    pub fn working_orders(&self) -> usize {
        self.working.len()
    }

    /// Best bid and ask prices.
    pub fn top(&self, instrument_id: u32) -> (Option<i64>, Option<i64>) {
        match self.books.get(instrument_id as usize) {
            Some(b) => (
                b.bids.keys().next_back().copied(),
                b.asks.keys().next().copied(),
            ),
            None => (None, None),
        }
    }

    fn check(&self, order: &NewOrder) -> Result<(), RejectReason> {
        let book = self
            .books
            .get(order.instrument_id as usize)
            .ok_or(RejectReason::UnknownInstrument)?;
        if self
            .working
            .contains_key(&(order.owner, order.client_order_id))
        {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        book.filters.check(
            order.side,
            order.ord_type,
            order.time_in_force,
            order.px,
            order.qty,
        )
    }

    /// Refuses a new order without looking at it (the venue's own reasons): a REJECTED notice.
    pub fn refuse(&mut self, order: NewOrder, reason: RejectReason) -> Outcome {
        let mut out = Outcome::default();
        out.notices.push(Notice {
            owner: order.owner,
            client_order_id: order.client_order_id,
            instrument_id: order.instrument_id,
            side: order.side,
            px: order.px,
            event: OrderEvent::Rejected { reason },
        });
        out
    }

    /// A new order: checked against the filters, matched, and the rest rested (GTC) or
    /// cancelled (IOC, market); a fill-or-kill that cannot fill entirely is rejected.
    pub fn submit(&mut self, order: NewOrder) -> Outcome {
        let mut out = Outcome::default();
        let notice = |event| Notice {
            owner: order.owner,
            client_order_id: order.client_order_id,
            instrument_id: order.instrument_id,
            side: order.side,
            px: order.px,
            event,
        };
        if let Err(reason) = self.check(&order) {
            out.notices.push(notice(OrderEvent::Rejected { reason }));
            return out;
        }
        if order.post_only && self.fillable(&order) > 0 {
            out.notices.push(notice(OrderEvent::Rejected {
                reason: RejectReason::WouldTakeLiquidity,
            }));
            return out;
        }
        if order.time_in_force == time_in_force::FOK && self.fillable(&order) < order.qty {
            out.notices.push(notice(OrderEvent::Rejected {
                reason: RejectReason::WouldNotFill,
            }));
            return out;
        }
        let venue_order_id = self.next_venue_order_id;
        self.next_venue_order_id += 1;
        out.notices.push(notice(OrderEvent::Accepted {
            venue_order_id,
            qty: order.qty,
        }));
        let filled = self.cross(&order, venue_order_id, (0, 0), &mut out);
        let cum_qty = filled.0;
        let leaves = order.qty - cum_qty;
        if leaves == 0 {
            return out;
        }
        if order.ord_type == ord_type::LIMIT && order.time_in_force == time_in_force::GTC {
            self.rest(&order, venue_order_id, filled, &mut out);
        } else {
            out.notices.push(notice(OrderEvent::Canceled {
                venue_order_id,
                cum_qty,
            }));
        }
        out
    }

    /// How much of `order` could fill now.
    fn fillable(&self, order: &NewOrder) -> i64 {
        let book = &self.books[order.instrument_id as usize];
        let limit_ok = |px: i64| {
            order.ord_type == ord_type::MARKET
                || if order.side == side::BUY {
                    px <= order.px
                } else {
                    px >= order.px
                }
        };
        let open = |q: &VecDeque<Resting>| q.iter().map(|o| o.qty - o.cum_qty).sum::<i64>();
        if order.side == side::BUY {
            book.asks
                .iter()
                .take_while(|(px, _)| limit_ok(**px))
                .map(|(_, q)| open(q))
                .sum()
        } else {
            book.bids
                .iter()
                .rev()
                .take_while(|(px, _)| limit_ok(**px))
                .map(|(_, q)| open(q))
                .sum()
        }
    }

    /// Matches `order`, which has `filled` already, against the opposite side; returns what
    /// it has filled then.
    fn cross(
        &mut self,
        order: &NewOrder,
        venue_order_id: u64,
        filled: Filled,
        out: &mut Outcome,
    ) -> Filled {
        let instrument_id = order.instrument_id;
        let (mut cum_qty, mut filled_px_qty) = filled;
        loop {
            let leaves = order.qty - cum_qty;
            if leaves == 0 {
                return (cum_qty, filled_px_qty);
            }
            let book = &mut self.books[instrument_id as usize];
            let best = if order.side == side::BUY {
                book.asks.first_key_value().map(|(&px, _)| px)
            } else {
                book.bids.last_key_value().map(|(&px, _)| px)
            };
            let Some(px) = best else {
                return (cum_qty, filled_px_qty);
            };
            let crosses = order.ord_type == ord_type::MARKET
                || if order.side == side::BUY {
                    px <= order.px
                } else {
                    px >= order.px
                };
            if !crosses {
                return (cum_qty, filled_px_qty);
            }
            let (level, maker_side) = if order.side == side::BUY {
                (
                    book.asks.get_mut(&px).expect("best level exists"),
                    side::SELL,
                )
            } else {
                (
                    book.bids.get_mut(&px).expect("best level exists"),
                    side::BUY,
                )
            };
            let maker = level.front_mut().expect("levels are never empty");
            let qty = leaves.min(maker.qty - maker.cum_qty);
            maker.cum_qty += qty;
            maker.filled_px_qty += px as i128 * qty as i128;
            cum_qty += qty;
            filled_px_qty += px as i128 * qty as i128;
            let maker_copy = *maker;
            let maker_done = maker.cum_qty == maker.qty;
            if maker_done {
                level.pop_front();
            }
            let level_qty: i64 = level.iter().map(|o| o.qty - o.cum_qty).sum();
            if level.is_empty() {
                if maker_side == side::SELL {
                    book.asks.remove(&px);
                } else {
                    book.bids.remove(&px);
                }
            }
            book.update_id += 1;
            let update_id = book.update_id;
            if maker_done {
                self.working
                    .remove(&(maker_copy.owner, maker_copy.client_order_id));
            }
            let trade_id = self.next_trade_id;
            self.next_trade_id += 1;
            out.market.push(MarketUpdate::Trade {
                instrument_id,
                trade_id,
                px,
                qty,
                buyer_is_maker: maker_side == side::BUY,
            });
            out.market.push(MarketUpdate::Level {
                instrument_id,
                side: maker_side,
                px,
                qty: level_qty,
                update_id,
            });
            let signed = |s: u8| if s == side::BUY { qty } else { -qty };
            *self
                .positions
                .entry((maker_copy.owner, instrument_id))
                .or_default() += signed(maker_side);
            *self
                .positions
                .entry((order.owner, instrument_id))
                .or_default() += signed(order.side);
            out.notices.push(Notice {
                owner: maker_copy.owner,
                client_order_id: maker_copy.client_order_id,
                instrument_id,
                side: maker_side,
                px,
                event: OrderEvent::Filled {
                    venue_order_id: maker_copy.venue_order_id,
                    last_px: px,
                    last_qty: qty,
                    cum_qty: maker_copy.cum_qty,
                    leaves_qty: maker_copy.qty - maker_copy.cum_qty,
                },
            });
            out.notices.push(Notice {
                owner: order.owner,
                client_order_id: order.client_order_id,
                instrument_id,
                side: order.side,
                px: order.px,
                event: OrderEvent::Filled {
                    venue_order_id,
                    last_px: px,
                    last_qty: qty,
                    cum_qty,
                    leaves_qty: order.qty - cum_qty,
                },
            });
        }
    }

    fn rest(&mut self, order: &NewOrder, venue_order_id: u64, filled: Filled, out: &mut Outcome) {
        let book = &mut self.books[order.instrument_id as usize];
        let levels = if order.side == side::BUY {
            &mut book.bids
        } else {
            &mut book.asks
        };
        let level = levels.entry(order.px).or_default();
        level.push_back(Resting {
            venue_order_id,
            owner: order.owner,
            client_order_id: order.client_order_id,
            qty: order.qty,
            cum_qty: filled.0,
            filled_px_qty: filled.1,
        });
        let qty = level.iter().map(|o| o.qty - o.cum_qty).sum();
        book.update_id += 1;
        out.market.push(MarketUpdate::Level {
            instrument_id: order.instrument_id,
            side: order.side,
            px: order.px,
            qty,
            update_id: book.update_id,
        });
        self.working.insert(
            (order.owner, order.client_order_id),
            Location {
                instrument_id: order.instrument_id,
                side: order.side,
                px: order.px,
            },
        );
    }

    /// Takes a working order off the book; returns it and the level's new total.
    fn take(
        &mut self,
        owner: u32,
        client_order_id: u64,
        out: &mut Outcome,
    ) -> Option<(Location, Resting)> {
        let at = self.working.remove(&(owner, client_order_id))?;
        let book = &mut self.books[at.instrument_id as usize];
        let levels = if at.side == side::BUY {
            &mut book.bids
        } else {
            &mut book.asks
        };
        let level = levels.get_mut(&at.px)?;
        let index = level
            .iter()
            .position(|o| o.owner == owner && o.client_order_id == client_order_id)?;
        let order = level.remove(index)?;
        let qty = level.iter().map(|o| o.qty - o.cum_qty).sum();
        if level.is_empty() {
            levels.remove(&at.px);
        }
        book.update_id += 1;
        out.market.push(MarketUpdate::Level {
            instrument_id: at.instrument_id,
            side: at.side,
            px: at.px,
            qty,
            update_id: book.update_id,
        });
        Some((at, order))
    }

    /// Cancels `orig_client_order_id` of `owner`; the notice carries `client_order_id` (the
    /// cancel request's) and reports under the cancelled order.
    pub fn cancel(
        &mut self,
        owner: u32,
        client_order_id: u64,
        orig_client_order_id: u64,
    ) -> Outcome {
        let mut out = Outcome::default();
        match self.take(owner, orig_client_order_id, &mut out) {
            Some((at, order)) => out.notices.push(Notice {
                owner,
                client_order_id: orig_client_order_id,
                instrument_id: at.instrument_id,
                side: at.side,
                px: at.px,
                event: OrderEvent::Canceled {
                    venue_order_id: order.venue_order_id,
                    cum_qty: order.cum_qty,
                },
            }),
            None => out.notices.push(Notice {
                owner,
                client_order_id,
                instrument_id: u32::MAX,
                side: 0,
                px: 0,
                event: OrderEvent::CancelRejected {
                    orig_client_order_id,
                    reason: RejectReason::UnknownOrder,
                    replace: false,
                },
            }),
        }
        out
    }

    /// Replaces `orig_client_order_id` with `new` (same instrument and side; new client order
    /// id, price and total quantity). The order loses its time priority; what already filled
    /// counts against the new quantity (a new quantity at or below it cancels the order).
    pub fn replace(&mut self, orig_client_order_id: u64, new: NewOrder) -> Outcome {
        let mut out = Outcome::default();
        let refused = |reason| Notice {
            owner: new.owner,
            client_order_id: new.client_order_id,
            instrument_id: new.instrument_id,
            side: new.side,
            px: new.px,
            event: OrderEvent::CancelRejected {
                orig_client_order_id,
                reason,
                replace: true,
            },
        };
        let Some(at) = self
            .working
            .get(&(new.owner, orig_client_order_id))
            .copied()
        else {
            out.notices.push(refused(RejectReason::UnknownOrder));
            return out;
        };
        if at.instrument_id != new.instrument_id || at.side != new.side {
            out.notices.push(refused(RejectReason::Unsupported));
            return out;
        }
        if let Err(reason) = self.check(&new) {
            out.notices.push(refused(reason));
            return out;
        }
        if new.post_only && self.fillable(&new) > 0 {
            // Refused whole: the order it would replace works on, unchanged.
            out.notices.push(refused(RejectReason::WouldTakeLiquidity));
            return out;
        }
        let Some((_, old)) = self.take(new.owner, orig_client_order_id, &mut out) else {
            out.notices.push(refused(RejectReason::UnknownOrder));
            return out;
        };
        let notice = |event| Notice {
            owner: new.owner,
            client_order_id: new.client_order_id,
            instrument_id: new.instrument_id,
            side: new.side,
            px: new.px,
            event,
        };
        if new.qty <= old.cum_qty {
            out.notices.push(notice(OrderEvent::Canceled {
                venue_order_id: old.venue_order_id,
                cum_qty: old.cum_qty,
            }));
            return out;
        }
        out.notices.push(notice(OrderEvent::Replaced {
            venue_order_id: old.venue_order_id,
            orig_client_order_id,
            leaves_qty: new.qty - old.cum_qty,
        }));
        let filled = (old.cum_qty, old.filled_px_qty);
        let filled = self.cross(&new, old.venue_order_id, filled, &mut out);
        if filled.0 < new.qty {
            self.rest(&new, old.venue_order_id, filled, &mut out);
        }
        out
    }

    /// Cancels every working order of `owner` (in one instrument, or all with `None`).
    pub fn mass_cancel(&mut self, owner: u32, instrument_id: Option<u32>) -> Outcome {
        let mut out = Outcome::default();
        let mut ids: Vec<(u64, Location)> = self
            .working
            .iter()
            .filter(|((o, _), at)| {
                *o == owner && instrument_id.is_none_or(|i| i == at.instrument_id)
            })
            .map(|((_, id), at)| (*id, *at))
            .collect();
        ids.sort_by_key(|(id, _)| *id);
        for (id, _) in ids {
            let mut one = self.cancel(owner, id, id);
            out.notices.append(&mut one.notices);
            out.market.append(&mut one.market);
        }
        out
    }
}
