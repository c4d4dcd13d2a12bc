//! Zero allocations once a risk engine is built: about a million mixed requests (new orders,
//! replaces, cancels, mass cancels; passing and refused by most checks), execution reports (acks,
//! partial and full fills, cancels, replaces, rejects, garbage), marks, limit replacements and
//! trading-state changes, counted by a global allocator that counts the calls made on the
//! measuring thread.

use levibot_engine::risk::{
    InstrumentLimits, RateLimit, RiskEngine, RiskLimits, TradingState, quote,
};
use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::Symbol;
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side, time_in_force,
};
use levibot_testkit::allocations;

const INSTRUMENTS: u32 = 4;
/// Ids the simulated venue remembers (a ring; old ones make unknown-id reports).
const REMEMBERED: usize = 256;

fn limits(collar_bps: u32) -> RiskLimits {
    let mut l = RiskLimits::default();
    for (id, symbol) in ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]
        .iter()
        .enumerate()
    {
        l.instruments[id] = Some(InstrumentLimits {
            symbol: Symbol::from_ascii(symbol.as_bytes()).unwrap(),
            quote_asset: Symbol::from_ascii(b"USDT").unwrap(),
            price_scale: Scale {
                mantissa: 1,
                exp: 8,
            },
            qty_scale: Scale {
                mantissa: 1,
                exp: 8,
            },
            tick_units: 10_000,
            lot_units: 1_000_000,
            price_min_units: 60_000_000,
            price_max_units: 140_000_000,
            qty_min_units: 1_000_000,
            qty_max_units: 1_900_000_000,
            notional_min: quote(1),
            collar_bps,
            order_qty_max_units: 1_800_000_000,
            order_notional_max: quote(17),
            position_max_units: 20_000_000_000,
            open_orders_max: 64,
        });
    }
    l.open_orders_max = 192;
    l.gross_exposure_max = quote(400);
    l.net_exposure_max = quote(250);
    l.loss_max = quote(1_000_000);
    l.loss_state = TradingState::ReduceOnly;
    l.order_rate = RateLimit {
        count_max: 1_000,
        window_ns: 1_000_000,
    };
    l.message_rate = RateLimit {
        count_max: 1_024,
        window_ns: 1_000_000,
    };
    l.fill_rate = RateLimit {
        count_max: 1_000,
        window_ns: 1_000_000,
    };
    l.duplicate_window_ns = 100_000;
    l
}

/// A simulated strategy and venue around the engine.
struct Driver {
    rng: fastrand::Rng,
    risk: RiskEngine,
    ids: [u64; REMEMBERED],
    id_count: usize,
    next_id: u64,
    now_ns: u64,
    /// Mid price per instrument, in units of 10^-8 (around 1.0000 USDT).
    mids: [i64; INSTRUMENTS as usize],
    passed: u64,
    refused: u64,
}

impl Driver {
    fn remember(&mut self, id: u64) {
        self.ids[self.id_count % REMEMBERED] = id;
        self.id_count += 1;
    }

    /// Mostly one of the last few ids that passed (likely open), sometimes an older one or
    /// garbage.
    fn some_id(&mut self) -> u64 {
        if self.id_count == 0 || self.rng.u8(..50) == 0 {
            return self.rng.u64(..);
        }
        let back = if self.rng.u8(..4) == 0 {
            self.rng.usize(..self.id_count.min(REMEMBERED))
        } else {
            self.rng.usize(..self.id_count.min(16))
        };
        self.ids[(self.id_count - 1 - back) % REMEMBERED]
    }

    fn request(&mut self) {
        let instrument_id = if self.rng.u8(..100) == 0 {
            INSTRUMENTS // no limits
        } else {
            self.rng.u32(..INSTRUMENTS)
        };
        let mid = self.mids[(instrument_id % INSTRUMENTS) as usize];
        let order_side = if self.rng.bool() {
            side::BUY
        } else {
            side::SELL
        };
        let away = self.rng.i64(1..150) * 10_000;
        let px = if order_side == side::BUY {
            mid - away
        } else {
            mid + away
        };
        let kind = match self.rng.u8(..20) {
            0..=10 => order_kind::NEW,
            11..=14 => order_kind::REPLACE,
            15..=18 => order_kind::CANCEL,
            _ => order_kind::MASS_CANCEL,
        };
        let o = OrderRequest {
            client_order_id: if self.rng.u16(..1_000) == 0 {
                self.next_id - 1 // a duplicate id
            } else {
                self.next_id
            },
            orig_client_order_id: self.some_id(),
            instrument_id,
            strategy_id: self.rng.u16(..2),
            kind,
            side: order_side,
            ord_type: if kind == order_kind::NEW && self.rng.u8(..10) == 0 {
                ord_type::MARKET
            } else {
                ord_type::LIMIT
            },
            time_in_force: time_in_force::GTC,
            // Now and then off the tick or lot grid.
            px: px + if self.rng.u8(..50) == 0 { 1 } else { 0 },
            qty: self.rng.i64(90..2_000) * 1_000_000 + if self.rng.u8(..50) == 0 { 7 } else { 0 },
            ..OrderRequest::default()
        };
        self.next_id += 1;
        match self.risk.check(&o, self.now_ns) {
            Ok(()) => {
                self.passed += 1;
                self.remember(o.client_order_id);
            }
            Err(reject) => {
                self.refused += 1;
                assert_ne!(reject.check, 0);
            }
        }
    }

    fn report(&mut self) {
        // Mostly about an open order (as a venue would), else any id.
        let open_orders = self.risk.open_orders();
        let client_order_id = if open_orders > 0 && self.rng.u8(..5) != 0 {
            let nth = self.rng.usize(..open_orders);
            self.risk.open_order_ids().nth(nth).unwrap_or(0)
        } else {
            self.some_id()
        };
        let open = self.risk.open_order(client_order_id);
        let instrument_id = open.map_or(self.rng.u32(..INSTRUMENTS), |o| o.instrument_id);
        let leaves = open.map_or(0, |o| o.leaves_qty);
        let fill = if leaves > 1_000_000 && self.rng.bool() {
            self.rng.i64(1..=leaves / 1_000_000) * 1_000_000
        } else {
            leaves
        };
        let exec = match self.rng.u8(..20) {
            0..=2 => exec_type::NEW,
            3..=10 => exec_type::TRADE,
            11..=13 => exec_type::CANCELED,
            14..=15 => exec_type::REPLACED,
            16 => exec_type::REJECTED,
            17 => exec_type::EXPIRED,
            _ => self.rng.u8(..),
        };
        let report = ExecutionReport {
            client_order_id,
            instrument_id,
            exec_type: exec,
            px: open.map_or(0, |o| o.px),
            last_px: self.mids[instrument_id as usize] + self.rng.i64(-20..20) * 10_000,
            last_qty: if self.rng.u8(..100) == 0 { -fill } else { fill },
            leaves_qty: leaves - fill,
            ..ExecutionReport::default()
        };
        self.risk.on_execution(&report, self.now_ns);
    }

    fn market(&mut self) {
        let i = self.rng.usize(..INSTRUMENTS as usize);
        self.mids[i] =
            (self.mids[i] + self.rng.i64(-3..=3) * 10_000).clamp(50_000_000, 200_000_000);
        let spread = self.rng.i64(1..5) * 10_000;
        let (bid, ask) = match self.rng.u8(..50) {
            0 => (0, self.mids[i] + spread),
            1 => (0, 0),
            _ => (self.mids[i] - spread, self.mids[i] + spread),
        };
        self.risk.on_market(i as u32, bid, ask);
    }

    fn step(&mut self, step: u64) {
        self.now_ns += self.rng.u64(500..3_000);
        match self.rng.u8(..20) {
            0..=8 => self.request(),
            9..=16 => self.report(),
            _ => self.market(),
        }
        if step.is_multiple_of(50_000) {
            // Limits replaced between two orders (valid ones allocate nothing).
            let collar = if step.is_multiple_of(100_000) {
                200
            } else {
                150
            };
            self.risk.replace_limits(limits(collar)).unwrap();
        }
        if step.is_multiple_of(20_011) {
            self.risk.set_trading_state(TradingState::Halted);
        } else if step % 20_011 == 300 {
            self.risk.set_trading_state(TradingState::ReduceOnly);
        } else if step % 20_011 == 600 || self.rng.u16(..5_000) == 0 {
            self.risk.set_trading_state(TradingState::Active);
        }
    }
}

#[test]
fn a_million_mixed_requests_reports_and_marks_allocate_nothing() {
    let seed = levibot_testkit::seed();
    let mut risk = RiskEngine::new(limits(200)).unwrap();
    for i in 0..INSTRUMENTS {
        risk.on_market(i, 99_990_000, 100_010_000);
    }
    let mut d = Driver {
        rng: fastrand::Rng::with_seed(seed),
        risk,
        ids: [0; REMEMBERED],
        id_count: 0,
        next_id: 1,
        now_ns: 1_000_000_000,
        mids: [100_000_000; INSTRUMENTS as usize],
        passed: 0,
        refused: 0,
    };
    for step in 1..=20_000 {
        d.step(step);
    }
    let before = allocations();
    for step in 20_001..=1_000_000 {
        d.step(step);
    }
    let counted = allocations() - before;
    assert_eq!(counted, 0, "seed {seed}: {counted} allocations");

    let refused_checks = d.risk.rejects().iter().filter(|&&n| n > 0).count();
    assert!(
        d.passed > 100_000 && d.refused > 50_000 && refused_checks >= 15,
        "seed {seed}: {} passed, {} refused, {refused_checks} checks refused: {:?}",
        d.passed,
        d.refused,
        d.risk.rejects()
    );
    assert!(d.risk.ignored_reports() > 0);
}
