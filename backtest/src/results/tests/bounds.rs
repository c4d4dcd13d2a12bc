//! Memory stays bounded however long the run: curves thin, fills drawn thin, markouts wait
//! in a bounded queue; thinning keeps the first and last points.

use super::*;

/// A long run: a mid every `step` from `T0 + step`, a fill (buy and sell in turn, 1 NKN,
/// maker) every `fill_every` events; calls `check` every 100,000 events.
fn long_run(
    config: ResultsConfig,
    events: u64,
    step: u64,
    fill_every: u64,
    mut check: impl FnMut(&Results),
) -> (Summary, crate::report::ReportData, Vec<u64>) {
    let mut results = Results::new(&[nkn()], config);
    let mut fill_times = Vec::new();
    for n in 1..=events {
        let t = T0 + n * step;
        let wiggle = (n % 7) as i64;
        let event = if n % fill_every == 0 {
            fill_times.push(t);
            fill(
                t,
                0,
                (n / fill_every).is_multiple_of(2),
                3500 + wiggle,
                10,
                0,
                true,
                100,
            )
        } else {
            mid(t, 0, 3500 + wiggle, 3502 + wiggle)
        };
        results.on_event(&event);
        if n % 100_000 == 0 {
            check(&results);
        }
    }
    let end = T0 + (events + 1) * step;
    let (summary, report) = results.finish(end);
    (summary, report, fill_times)
}

#[test]
fn a_million_events_in_bounded_memory() {
    let config = ResultsConfig::default();
    let (points_max, drawn_max) = (config.curve_points_max, config.fills_drawn_max);
    let mut checks = 0;
    // 10 ms apart (10,000 s, so 10,000 one-second samples), a fill every second.
    let (s, r, fills) = long_run(config, 1_000_000, 10 * MS, 100, |results| {
        checks += 1;
        let equity = results.equity.as_ref().unwrap();
        assert!(equity.curve.points.len() < points_max);
        assert!(equity.drawdown_curve.points.len() < points_max);
        assert!(results.mid_curves[0].points.len() < points_max);
        assert!(results.position_curves[0].points.len() < points_max);
        let nkn = &results.instruments[0];
        assert!(nkn.fills_drawn.len() < drawn_max);
        // Fills 1 s apart wait for a 10 s horizon: 11 at most.
        assert!(
            nkn.markouts.pending_len() <= 11,
            "{}",
            nkn.markouts.pending_len()
        );
    });
    assert_eq!(checks, 10);
    assert_eq!((s.fills, s.messages), (10_000, 0));
    assert_eq!(s.equity.intervals, 10_000);
    let nkn = &r.instruments[0];
    for curve in [&r.equity, &r.drawdown, &nkn.mid, &nkn.position] {
        assert!(curve.points.len() <= points_max, "{}", curve.name);
        assert!(curve.points.len() > points_max / 4, "{}", curve.name);
        assert_eq!(curve.points.last().unwrap().0, s.end_t_ns, "{}", curve.name);
    }
    assert!(nkn.fills.len() <= drawn_max && nkn.fills.len() > drawn_max / 4);
    assert_eq!(nkn.fills.first().unwrap().t_ns, fills[0]);
    assert_eq!(nkn.fills.last().unwrap().t_ns, *fills.last().unwrap());
    // Fills at 1, 2, ..., 10,000 s; the end at 10,000.01 s: the last fill's horizons are all
    // past it, and the last ten fills' 10 s horizon.
    let m: Vec<(u64, u64)> = s.instruments[0]
        .markouts
        .iter()
        .map(|m| (m.fills_marked, m.fills_past_end))
        .collect();
    assert_eq!(m, [(9_999, 1), (9_999, 1), (9_990, 10)]);
    assert_eq!(s.instruments[0].markout_fills_dropped, 0);
}

#[test]
fn thinning_keeps_the_first_and_last_points_and_subsamples() {
    let small = ResultsConfig {
        curve_points_max: 64,
        fills_drawn_max: 16,
        ..ResultsConfig::default()
    };
    let full = ResultsConfig {
        curve_points_max: usize::MAX,
        fills_drawn_max: usize::MAX,
        ..ResultsConfig::default()
    };
    // A mid every 300 ms from T0 + 0.3 s for an hour, a fill every 10 events. The first
    // sample (T0) has no mid: the mid curve starts at T0 + 1 s, off the thinned stride.
    let (_, thin, fills) = long_run(small, 12_000, 300 * MS, 10, |_| {});
    let (_, all, _) = long_run(full, 12_000, 300 * MS, 10, |_| {});
    let pairs = [
        (&thin.equity, &all.equity),
        (&thin.drawdown, &all.drawdown),
        (&thin.instruments[0].mid, &all.instruments[0].mid),
        (&thin.instruments[0].position, &all.instruments[0].position),
    ];
    for (thin, all) in pairs {
        assert!(
            thin.points.len() <= 64,
            "{}: {}",
            thin.name,
            thin.points.len()
        );
        assert!(all.points.len() > 1_000, "{}", all.name);
        assert_eq!(thin.points.first(), all.points.first(), "{}", thin.name);
        assert_eq!(thin.points.last(), all.points.last(), "{}", thin.name);
        // A subsample of the full curve, evenly spaced but for the end.
        let gaps: Vec<u64> = thin.points[1..thin.points.len() - 1]
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .collect();
        assert!(
            gaps.windows(2).all(|g| g[0] == g[1]),
            "{}: {gaps:?}",
            thin.name
        );
        for point in &thin.points {
            assert!(all.points.contains(point), "{}: {point:?}", thin.name);
        }
    }
    let fills_drawn = &thin.instruments[0].fills;
    assert!(fills_drawn.len() <= 16);
    assert_eq!(fills_drawn.first().unwrap().t_ns, fills[0]);
    assert_eq!(fills_drawn.last().unwrap().t_ns, *fills.last().unwrap());
    assert_eq!(all.instruments[0].fills.len(), fills.len());
}

#[test]
fn markouts_waiting_are_capped_and_counted() {
    let config = ResultsConfig {
        markout_horizons_ns: vec![1_000 * S],
        markout_pending_max: 10,
        ..ResultsConfig::default()
    };
    let (s, _, _) = long_run(config, 500, 100 * MS, 10, |_| {});
    let nkn = &s.instruments[0];
    assert_eq!(nkn.fills, 50);
    assert_eq!(nkn.markout_fills_dropped, 40);
    assert_eq!(nkn.markouts[0].fills_past_end, 10);
    assert_eq!(nkn.markouts[0].fills_marked, 0);
}
