//! Criterion micro-benchmark of pre-trade risk: `cargo bench -p levibot-bench --bench risk`.
//!
//! A realistic state: four corpus instruments (BTCUSDT, ETHUSDT, BNBUSDT, NKNUSDT, limits built
//! from the recorded exchangeInfo), a reference price on each, 24 resting orders (three buys and
//! three sells per instrument), and positions from fills.
//!
//! - `risk/check/pass`: all checks of one new limit order that passes, and its recording (open
//!   order, rate windows, recent orders, exposures). The orders cycle through 64 prices on the
//!   four instruments; after each batch of 64, untimed CANCELED reports take them out again, so
//!   every timed check sees the same state. Timed in batches (one clock read per 64 checks).
//! - `risk/check/reject_gross`: an order refused by the last check (gross exposure): every
//!   check runs, then the reject is built and counted.
//! - `risk/check/reject_tick`: an order refused by an early check (off the tick grid).
//! - `risk/on_market`: a new top of book (reference, collar bounds, exposures, PnL).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use levibot_engine::risk::limits::{RateLimit, quote};
use levibot_engine::risk::{RiskEngine, RiskLimits, TradingState};
use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side, time_in_force,
};

/// Per instrument: symbol, mid price (10^-8 USDT), tick, order quantity (10^-8 base), worth about
/// 500-700 USDT.
const BOOK: [(&str, i64, i64, i64); 4] = [
    ("BTCUSDT", 5_400_000_000_000, 1_000_000, 1_000_000),
    ("ETHUSDT", 350_000_000_000, 1_000_000, 20_000_000),
    ("BNBUSDT", 42_000_000_000, 10_000_000, 150_000_000),
    ("NKNUSDT", 35_000_000, 10_000, 200_000_000_000),
];
/// Orders timed between two clock reads.
const BATCH: usize = 64;
/// Between two requests: 2 us (500 a millisecond, under the rate limits).
const STEP_NS: u64 = 2_000;

fn limits() -> RiskLimits {
    let all = Recording::testdata()
        .expect("the corpus")
        .instruments()
        .expect("exchangeInfo");
    let symbols: Vec<&str> = BOOK.iter().map(|b| b.0).collect();
    let table = InstrumentTable::select(&all, &symbols).expect("corpus symbols");
    let instruments: Vec<&Instrument> = table.iter().collect();
    let mut l = RiskLimits::for_instruments(&instruments).expect("limits");
    for (each, &(_, _, _, qty)) in l.instruments_mut().zip(&BOOK) {
        each.collar_bps = 50;
        each.order_qty_max_units = 20 * qty;
        each.order_notional_max = quote(5_000);
        each.position_max_units = 200 * qty;
        each.open_orders_max = 64;
    }
    l.open_orders_max = 256;
    l.gross_exposure_max = quote(1_000_000);
    l.net_exposure_max = quote(500_000);
    l.loss_max = quote(10_000);
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
        count_max: 100,
        window_ns: 1_000_000,
    };
    l.duplicate_window_ns = 100_000;
    l
}

fn limit(instrument_id: u32, order_side: u8, px: i64, qty: i64) -> OrderRequest {
    OrderRequest {
        instrument_id,
        strategy_id: 1,
        kind: order_kind::NEW,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px,
        qty,
        ..OrderRequest::default()
    }
}

fn report(order: &OrderRequest, kind: u8, fill_qty: i64) -> ExecutionReport {
    ExecutionReport {
        client_order_id: order.client_order_id,
        instrument_id: order.instrument_id,
        exec_type: kind,
        side: order.side,
        px: order.px,
        last_px: order.px,
        last_qty: fill_qty,
        leaves_qty: order.qty - fill_qty,
        ..ExecutionReport::default()
    }
}

/// The engine with its references, resting orders and positions; the next id and time.
struct Desk {
    risk: RiskEngine,
    next_id: u64,
    now_ns: u64,
}

impl Desk {
    fn new(limits: RiskLimits) -> Desk {
        let mut risk = RiskEngine::new(limits).expect("valid limits");
        for (id, &(_, mid, tick, _)) in BOOK.iter().enumerate() {
            risk.on_market(id as u32, mid - tick, mid + tick);
        }
        let mut desk = Desk {
            risk,
            next_id: 1,
            now_ns: 1_000_000_000,
        };
        for (id, &(_, mid, tick, qty)) in BOOK.iter().enumerate() {
            let id = id as u32;
            for bps in [30, 35, 40] {
                let away = (mid * bps / 10_000) / tick * tick;
                desk.send(limit(id, side::BUY, mid - away, qty));
                desk.send(limit(id, side::SELL, mid + away, qty));
            }
            // A position: a buy filled in full.
            let filled = desk.send(limit(id, side::BUY, mid - tick, 2 * qty));
            desk.risk
                .on_execution(&report(&filled, exec_type::TRADE, 2 * qty), desk.now_ns);
        }
        assert_eq!(desk.risk.open_orders(), 24);
        // Past the fill-rate window.
        desk.now_ns += 10_000_000;
        desk
    }

    fn send(&mut self, mut order: OrderRequest) -> OrderRequest {
        order.client_order_id = self.next_id;
        self.next_id += 1;
        self.now_ns += STEP_NS;
        if let Err(reject) = self.risk.check(&order, self.now_ns) {
            panic!("set-up order refused: {reject:?}");
        }
        order
    }
}

/// 64 passing orders: both sides of the four instruments, 1 to 16 ticks from the mid (inside the
/// 0.5% collar, on the right side of our resting orders: no self-trade), each price once.
fn passing_orders() -> Vec<OrderRequest> {
    (0..BATCH)
        .map(|i| {
            let (_, mid, tick, qty) = BOOK[i % BOOK.len()];
            let k = 1 + (i / BOOK.len()) as i64;
            let id = (i % BOOK.len()) as u32;
            if (i / BOOK.len()).is_multiple_of(2) {
                limit(id, side::BUY, mid - k * tick, qty)
            } else {
                limit(id, side::SELL, mid + k * tick, qty)
            }
        })
        .collect()
}

fn checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("risk");

    let mut desk = Desk::new(limits());
    // The orders in the order they are sent, twice over: a batch is a window of 64 starting
    // anywhere, so that consecutive calls keep cycling (an identical order comes back only after
    // 63 others, 128 us later, outside the 100 us duplicate window).
    let mut orders = passing_orders();
    orders.extend_from_within(..);
    let mut cursor = 0;
    group.bench_function("check/pass", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0u64;
            let mut refused = 0u64;
            while done < iters {
                let n = (iters - done).min(BATCH as u64) as usize;
                let batch = &mut orders[cursor..cursor + n];
                let start = Instant::now();
                for order in batch.iter_mut() {
                    order.client_order_id = desk.next_id;
                    desk.next_id += 1;
                    desk.now_ns += STEP_NS;
                    let outcome = desk.risk.check(black_box(order), desk.now_ns);
                    refused += black_box(outcome).is_err() as u64;
                }
                elapsed += start.elapsed();
                for order in batch.iter() {
                    let canceled = report(order, exec_type::CANCELED, 0);
                    desk.risk.on_execution(&canceled, desk.now_ns);
                }
                cursor = (cursor + n) % BATCH;
                done += n as u64;
            }
            assert_eq!(
                refused,
                0,
                "every timed order passes: {:?}",
                desk.risk.rejects()
            );
            assert_eq!(desk.risk.open_orders(), 24);
            elapsed
        })
    });

    // The same state with a gross limit half an order above the current gross exposure.
    let mut desk = Desk::new(limits());
    let gross = desk.risk.exposure().gross;
    let mut tight = *desk.risk.limits();
    tight.gross_exposure_max = gross + quote(250);
    desk.risk.replace_limits(tight).expect("valid limits");
    let (_, mid, tick, qty) = BOOK[0];
    let mut order = limit(0, side::BUY, mid - 3 * tick, qty);
    let rejects_before = desk.risk.rejects().iter().sum::<u64>();
    group.bench_function("check/reject_gross", |b| {
        b.iter(|| {
            order.client_order_id = desk.next_id;
            desk.next_id += 1;
            desk.now_ns += STEP_NS;
            black_box(desk.risk.check(black_box(&order), desk.now_ns))
        })
    });
    let gross_rejects = desk
        .risk
        .rejects_of(levibot_engine::risk::RiskCheck::GrossExposure);
    assert_eq!(
        gross_rejects,
        desk.risk.rejects().iter().sum::<u64>() - rejects_before,
        "every timed order is refused by the gross exposure check"
    );

    let mut order = limit(0, side::BUY, mid - 3 * tick + 1, qty);
    group.bench_function("check/reject_tick", |b| {
        b.iter(|| {
            order.client_order_id = desk.next_id;
            desk.next_id += 1;
            desk.now_ns += STEP_NS;
            black_box(desk.risk.check(black_box(&order), desk.now_ns))
        })
    });

    let mut step = 0i64;
    group.bench_function("on_market", |b| {
        b.iter(|| {
            step = (step + 1) & 15;
            let bid = mid - (1 + step) * tick;
            desk.risk
                .on_market(black_box(0), black_box(bid), black_box(mid + tick));
        })
    });
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
