//! Seeded random runs against a naive re-implementation written apart: PnL in plain
//! floating point event by event, equity at each sample time found by scanning, the ratios in
//! two passes, the drawdown over every event.

use super::*;

/// ETHUSDT in 0.01 USDT and 0.001 ETH: a notional unit is 0.00001 USDT, a fee unit 1e-11.
const NOTIONAL_USDT: f64 = 1e-5;
const FEE_USDT: f64 = 1e-11;

/// The naive books: floats, updated as the events come.
#[derive(Default)]
struct Naive {
    cash: f64,
    position: f64,
    fees: f64,
    mid: f64,
}

impl Naive {
    fn equity(&self) -> f64 {
        (self.cash + self.position * self.mid) * NOTIONAL_USDT - self.fees * FEE_USDT
    }
}

fn check(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let interval = [S, 250 * MS, 3 * S][(seed % 3) as usize];
    let mut t = T0 + rng.u64(0..5 * S);
    let first_t = t;
    let mut bid_plus_ask: i64 = 600_001; // 3,000.005 USDT
    let mut events = vec![ResultEvent::Mid {
        t_ns: t,
        instrument_id: 0,
        bid_plus_ask,
    }];
    let mut naive = Naive {
        mid: bid_plus_ask as f64 / 2.0,
        ..Naive::default()
    };
    // Equity after each event, with its time.
    let mut after: Vec<(u64, f64)> = vec![(t, 0.0)];
    for _ in 0..3_000 {
        t += match rng.u8(0..10) {
            0 => rng.u64(5 * S..30 * S),
            1..=3 => 0,
            _ => rng.u64(0..2 * S),
        };
        if rng.u8(0..10) < 6 {
            bid_plus_ask += rng.i64(-20..=20);
            events.push(ResultEvent::Mid {
                t_ns: t,
                instrument_id: 0,
                bid_plus_ask,
            });
            naive.mid = bid_plus_ask as f64 / 2.0;
        } else {
            let buy = rng.bool();
            let px = bid_plus_ask / 2 + rng.i64(-3..=3);
            let qty = rng.i64(1..=2_000);
            let rate_ppm = rng.i64(-100..=1_000);
            events.push(fill(t, 0, buy, px, qty, rate_ppm, rng.bool(), 0));
            let sign = if buy { 1.0 } else { -1.0 };
            naive.position += sign * qty as f64;
            naive.cash -= sign * (px * qty) as f64;
            naive.fees += (px * qty * rate_ppm) as f64;
        }
        after.push((t, naive.equity()));
    }
    let end = t + rng.u64(0..3 * S);

    let origin = first_t / interval * interval;
    let mut samples = Vec::new();
    let (mut next, mut equity) = (0, 0.0);
    let mut tk = origin;
    while tk <= end {
        while next < after.len() && after[next].0 <= tk {
            equity = after[next].1;
            next += 1;
        }
        samples.push((tk, equity));
        tk += interval;
    }
    let (mut peak, mut fall) = (0.0f64, 0.0f64);
    for &(_, e) in &after {
        peak = peak.max(e);
        fall = fall.max(peak - e);
    }
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let (sharpe, sortino) = naive_ratios(&values);

    let config = ResultsConfig {
        sample_interval_ns: interval,
        curve_points_max: 1_000_000,
        ..ResultsConfig::default()
    };
    let inst = instrument(0, "ETH", "USDT", 2, 3);
    let (s, r) = run(&[inst], config, &events, end);
    let what = |name: &str| format!("seed {seed} (interval {interval} ns): {name}");
    let e = &s.equity;
    assert_eq!(
        e.intervals,
        samples.len() as u64 - 1,
        "{}",
        what("intervals")
    );
    let both = |got: Option<f64>, want: Option<f64>, name: &str| match (got, want) {
        (Some(g), Some(w)) => close(g, w, &what(name)),
        _ => assert_eq!(got, want, "{}", what(name)),
    };
    both(e.sharpe, sharpe, "sharpe");
    both(e.sortino, sortino, "sortino");
    let annual = (365.0 * 86_400.0 / (interval as f64 / 1e9)).sqrt();
    both(
        e.sharpe_annualised,
        sharpe.map(|s| s * annual),
        "sharpe annualised",
    );
    close(e.max_drawdown_quote.unwrap(), fall, &what("max drawdown"));
    close(
        s.instruments[0].net_pnl_quote,
        naive.equity(),
        &what("net PnL"),
    );
    // The equity curve is the samples (and the end, when it is off the grid).
    let grid_points = &r.equity.points[..samples.len()];
    for (&(t, got), &(want_t, want)) in grid_points.iter().zip(&samples) {
        assert_eq!(t, want_t, "{}", what("sample time"));
        assert!(
            (got - want).abs() <= 1e-9,
            "{}: {got} vs {want}",
            what("sample")
        );
    }
    let tail = r.equity.points.len() - samples.len();
    assert_eq!(
        tail,
        usize::from(samples.last().unwrap().0 < end),
        "{}",
        what("end point")
    );
}

#[test]
fn ratios_and_drawdown_match_a_naive_implementation_on_seeded_runs() {
    for seed in 0..6 {
        check(seed);
    }
}
