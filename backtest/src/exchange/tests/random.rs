//! Seeded random runs: random market data (snapshots, diffs that may cross the book and force
//! a resync, tickers, trades of any size) and random requests (every order type, cancels and
//! replaces of live, done and unknown orders, mass cancels) under every queue model and
//! self-trade mode. The venue must not panic, and what it reports must add up: each order's
//! cumulative quantity is the sum of its fills and never above its quantity, leaves are never
//! negative, the position is the sum of the fills, no fill is at a price worse than its
//! order's limit (a resting order's fills are at its own price), fees are `px x qty x rate`,
//! and the working orders are those not yet done.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;

/// An order of ours as its reports so far show it.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    side: u8,
    /// `None`: a market order.
    limit: Option<i64>,
    qty: i64,
    cum: i64,
}

struct Run {
    v: Venue,
    config: ExchangeConfig,
    rng: fastrand::Rng,
    /// Mid of the generated market, in NKNUSDT ticks.
    mid: i64,
    next_id: u64,
    /// Every client order id used, and what is working or was last known of it.
    known: Vec<u64>,
    working: BTreeMap<u64, Tracked>,
    /// Every order placed, as placed (an id used again: the last).
    placed: HashMap<u64, Tracked>,
    /// Orders placed (new or replaced) that have filled since.
    filled: HashSet<u64>,
    position: i64,
}

impl Run {
    fn price(&mut self, spread: i64) -> i64 {
        (self.mid + self.rng.i64(-spread..=spread)) * TICK
    }

    /// A quantity in units: usually whole lots, sometimes a fraction (trades of a finer lot).
    fn trade_qty(&mut self) -> i64 {
        match self.rng.u8(0..4) {
            0 => self.rng.i64(1..LOT * 3),
            _ => qty(self.rng.i64(1..60)),
        }
    }

    fn levels(&mut self, below: bool) -> Vec<(i64, i64)> {
        let n = self.rng.usize(0..4);
        (0..n)
            .map(|_| {
                let off = self.rng.i64(1..15);
                let p = if below {
                    self.mid - off
                } else {
                    self.mid + off
                };
                let q = if self.rng.u8(0..4) == 0 {
                    0
                } else {
                    qty(self.rng.i64(1..80))
                };
                (p * TICK, q)
            })
            .collect()
    }

    fn market_step(&mut self) {
        match self.rng.u8(0..10) {
            0 => {
                let mut bids = dedup(self.levels(true));
                bids.reverse(); // best (highest) first
                let asks = dedup(self.levels(false));
                self.v.snapshot_of(NKN, &bids, &asks);
            }
            1..=4 => {
                self.mid += self.rng.i64(-2..=2);
                let bids = self.levels(true);
                let asks = self.levels(false);
                self.v.depth_of(NKN, &bids, &asks);
            }
            5 => {
                let bid = self.price(3);
                let ask = bid + TICK * self.rng.i64(1..4);
                let json = ticker_json(NKN, bid, ask);
                self.v.stream(&json);
            }
            _ => {
                let p = self.price(4);
                let q = self.trade_qty();
                let seller_took = self.rng.bool();
                let ms = self.v.t_ns / MS;
                let json = if self.rng.u8(0..8) == 0 {
                    agg_trade_json(NKN, ms, p, q, seller_took)
                } else {
                    trade_json(NKN, ms, p, q, seller_took)
                };
                self.v.stream(&json);
            }
        }
    }

    fn request_step(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        // Mostly a working order; sometimes one that is done, or was never placed.
        let pick_known = |run: &mut Run| -> u64 {
            let working: Vec<u64> = run.working.keys().copied().collect();
            match (run.rng.u8(0..4), working.len(), run.known.len()) {
                (0, _, 0) | (1..=3, 0, 0) => 999_999,
                (0, _, n) | (1..=3, 0, n) => run.known[run.rng.usize(0..n)],
                (_, n, _) => working[run.rng.usize(0..n)],
            }
        };
        let request = match self.rng.u8(0..10) {
            0..=4 => {
                let order_side = if self.rng.bool() {
                    side::BUY
                } else {
                    side::SELL
                };
                let tif = [
                    time_in_force::GTC,
                    time_in_force::GTC,
                    time_in_force::GTC,
                    time_in_force::IOC,
                    time_in_force::FOK,
                ][self.rng.usize(0..5)];
                let px = self.price(6);
                let lots = self.rng.i64(3..40);
                let id = if self.rng.u8(0..20) == 0 {
                    pick_known(self)
                } else {
                    id
                };
                if self.rng.u8(0..6) == 0 {
                    market(id, order_side, lots)
                } else {
                    limit(id, order_side, px, qty(lots), tif)
                }
            }
            5..=6 => cancel(id, pick_known(self)),
            7..=8 => {
                let px = self.price(6);
                OrderRequest {
                    px,
                    ..replace(id, pick_known(self), 0, self.rng.i64(2..40))
                }
            }
            _ => OrderRequest {
                instrument_id: if self.rng.bool() { NKN } else { u32::MAX },
                ..request(order_kind::MASS_CANCEL, id)
            },
        };
        self.known.push(request.client_order_id);
        self.v.send(&request);
        self.check_reports(&request);
    }

    /// Checks the reports since the last step against what the orders were.
    fn check_reports(&mut self, request: &OrderRequest) {
        let reports = self.v.reports();
        for r in &reports {
            let id = r.client_order_id;
            assert!(r.leaves_qty >= 0, "negative leaves: {r:?}");
            match r.exec_type {
                exec_type::NEW => {
                    assert_eq!(id, request.client_order_id);
                    let limit = (request.ord_type == ord_type::LIMIT).then_some(request.px);
                    let tracked = Tracked {
                        side: request.side,
                        limit,
                        qty: request.qty,
                        cum: 0,
                    };
                    assert!(
                        self.working.insert(id, tracked).is_none(),
                        "{id} was working"
                    );
                    self.placed.insert(id, tracked);
                    self.filled.remove(&id);
                    assert_eq!(r.leaves_qty, request.qty);
                }
                exec_type::REPLACED => {
                    let old = self
                        .working
                        .remove(&request.orig_client_order_id)
                        .expect("replaced a working order");
                    assert_eq!((id, r.cum_qty), (request.client_order_id, old.cum));
                    let new = Tracked {
                        limit: Some(request.px),
                        qty: request.qty,
                        ..old
                    };
                    assert!(new.qty > new.cum, "replaced below what filled: {r:?}");
                    self.working.insert(id, new);
                    self.placed.insert(id, new);
                    self.filled.remove(&id);
                    assert_eq!(r.leaves_qty, new.qty - new.cum);
                }
                exec_type::TRADE => {
                    let t = self
                        .working
                        .get_mut(&id)
                        .expect("a trade of a working order");
                    assert!(r.last_qty > 0, "{r:?}");
                    t.cum += r.last_qty;
                    assert_eq!(r.cum_qty, t.cum, "cum is the sum of the fills: {r:?}");
                    assert!(t.cum <= t.qty, "cum above the quantity: {r:?} of {t:?}");
                    assert_eq!(r.leaves_qty, t.qty - t.cum);
                    if let Some(limit) = t.limit {
                        let worse = match t.side {
                            side::BUY => r.last_px > limit,
                            _ => r.last_px < limit,
                        };
                        assert!(!worse, "filled worse than its limit: {r:?} of {t:?}");
                    }
                    self.position += if t.side == side::BUY {
                        r.last_qty
                    } else {
                        -r.last_qty
                    };
                    let done = t.cum == t.qty;
                    assert_eq!(r.ord_status, if done { b'2' } else { b'1' });
                    if done {
                        self.working.remove(&id);
                    }
                }
                exec_type::CANCELED | exec_type::EXPIRED => {
                    let t = self.working.remove(&id).expect("ended a working order");
                    assert_eq!((r.cum_qty, r.leaves_qty), (t.cum, 0), "{r:?}");
                }
                exec_type::REJECTED => assert_eq!(id, request.client_order_id),
                other => panic!("unexpected exec type {other}: {r:?}"),
            }
        }
        for f in self.v.fills() {
            let t = self.placed[&f.client_order_id];
            let rate = if f.maker {
                self.config.maker_fee_ppm
            } else {
                self.config.taker_fee_ppm
            };
            assert_eq!(
                f.fee_scaled,
                i128::from(f.px) * i128::from(f.qty) * i128::from(rate)
            );
            assert!(f.queue_ahead >= 0 && f.qty > 0, "{f:?}");
            assert_eq!(f.side, t.side);
            let first = self.filled.insert(f.client_order_id);
            assert_eq!(
                f.order_first_fill, first,
                "the first fill since placed: {f:?}"
            );
            if f.maker {
                assert_eq!(Some(f.px), t.limit, "a maker fill at its own price: {f:?}");
            }
        }
        assert_eq!(
            self.v.position(),
            self.position,
            "position is the sum of the fills"
        );
        let working: Vec<u64> = self.working.keys().copied().collect();
        assert_eq!(self.v.working(), working);
    }
}

/// One level per price (a snapshot lists each price once).
fn dedup(mut levels: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    levels.retain(|l| l.1 > 0);
    levels.sort_by_key(|l| l.0);
    levels.dedup_by_key(|l| l.0);
    levels
}

fn run(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let queue = [
        QueueModel::RiskAverse,
        QueueModel::Power(2.0),
        QueueModel::Power2(0.5),
        QueueModel::Power3(3.0),
        QueueModel::Log,
        QueueModel::Log2,
    ][(seed % 6) as usize];
    let self_trade = [
        SelfTradePrevention::ExpireTaker,
        SelfTradePrevention::ExpireMaker,
        SelfTradePrevention::ExpireBoth,
    ][(seed / 6 % 3) as usize];
    let config = ExchangeConfig {
        queue,
        maker_fee_ppm: rng.i64(-100..100),
        taker_fee_ppm: rng.i64(0..500),
        self_trade,
    };
    let mut run = Run {
        v: Venue::new(config),
        config,
        rng,
        mid: 35_000,
        next_id: 1,
        known: Vec::new(),
        working: BTreeMap::new(),
        placed: HashMap::new(),
        filled: HashSet::new(),
        position: 0,
    };
    // Best first on each side.
    let bids: Vec<(i64, i64)> = (1..10)
        .map(|i| ((35_000 - i) * TICK, qty(10 * i)))
        .collect();
    let asks: Vec<(i64, i64)> = (1..10)
        .map(|i| ((35_000 + i) * TICK, qty(10 * i)))
        .collect();
    run.v.snapshot_of(NKN, &bids, &asks);
    for _ in 0..600 {
        if run.rng.u8(0..3) == 0 {
            run.request_step();
        } else {
            run.market_step();
            let none = OrderRequest::default();
            run.check_reports(&none);
        }
    }
}

#[test]
fn random_market_and_orders_keep_every_report_consistent() {
    for seed in 0..36 {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| run(seed))) {
            let what = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("seed {seed}: {what}");
        }
    }
}
