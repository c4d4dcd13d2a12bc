//! Order round trips (`answered - sent`) per request kind, in HdrHistograms of nanoseconds.

use hdrhistogram::Histogram;

use super::summary::{LatencyStats, LatencySummary};
use super::{LatencyEvent, RequestKind};

/// Longest round trip told apart; a longer one is recorded as this (a minute is far past any
/// stall worth telling apart).
const TRACKED_MAX_NS: u64 = 60_000_000_000;

/// Upper bounds of the report's buckets within a decade (Renard's R10 series), times
/// `100 ns x 10^d`: about 26% apart, ten to a decade.
const R10: [u64; 10] = [100, 125, 160, 200, 250, 320, 400, 500, 630, 800];

/// One kind's round trips.
#[derive(Clone, Debug)]
struct Kind {
    histogram: Histogram<u64>,
    /// Exact, for the mean and the max (the histogram's are to 3 significant digits).
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Kind {
    fn new() -> Kind {
        Kind {
            histogram: Histogram::new_with_bounds(1, TRACKED_MAX_NS, 3)
                .expect("1 ns to a minute at 3 significant digits is a valid histogram"),
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    fn stats(&self) -> LatencyStats {
        let h = &self.histogram;
        let count = h.len();
        let us = |ns: u64| ns as f64 / 1000.0;
        // Within the exact extremes: one round trip of 50 µs is 50 µs at every percentile.
        let at = |q: f64| {
            (count > 0).then(|| us(h.value_at_quantile(q).clamp(self.min_ns, self.max_ns)))
        };
        LatencyStats {
            count,
            mean_us: (count > 0).then(|| self.sum_ns as f64 / count as f64 / 1000.0),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: (count > 0).then(|| us(self.max_ns)),
        }
    }
}

/// Round trips of new orders, cancels and replaces.
#[derive(Clone, Debug)]
pub(super) struct Latency {
    kinds: [Kind; 3],
}

fn index(kind: RequestKind) -> usize {
    match kind {
        RequestKind::New => 0,
        RequestKind::Cancel => 1,
        RequestKind::Replace => 2,
    }
}

impl Latency {
    pub fn new() -> Latency {
        Latency {
            kinds: [Kind::new(), Kind::new(), Kind::new()],
        }
    }

    /// An answer before its request (clocks that disagree) counts as 0.
    pub fn record(&mut self, event: &LatencyEvent) {
        let ns = event.answered_ns.saturating_sub(event.sent_ns);
        let kind = &mut self.kinds[index(event.kind)];
        kind.histogram.saturating_record(ns);
        kind.sum_ns += u128::from(ns);
        kind.min_ns = kind.min_ns.min(ns);
        kind.max_ns = kind.max_ns.max(ns);
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            new: self.kinds[0].stats(),
            cancel: self.kinds[1].stats(),
            replace: self.kinds[2].stats(),
        }
    }

    /// All kinds' round trips as `(upper bound in µs, count)` over fixed R10 buckets (the
    /// first from 0, each next from its predecessor's bound exclusive), from the first
    /// non-empty bucket to the last. A value is placed by the middle of its histogram bucket
    /// (3 significant digits: a round trip within 0.1% of a bound may land on either side).
    pub fn buckets_us(&self) -> Vec<(f64, u64)> {
        let bounds: Vec<u64> = (0..10u32)
            .flat_map(|d| R10.iter().map(move |&r| r * 10u64.pow(d)))
            .collect();
        let mut counts = vec![0u64; bounds.len()];
        for kind in &self.kinds {
            for v in kind.histogram.iter_recorded() {
                let value = kind.histogram.median_equivalent(v.value_iterated_to());
                let at = bounds.partition_point(|&b| b < value).min(bounds.len() - 1);
                counts[at] += v.count_at_value();
            }
        }
        let Some(first) = counts.iter().position(|&c| c > 0) else {
            return Vec::new();
        };
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(first);
        (first..=last)
            .map(|i| (bounds[i] as f64 / 1000.0, counts[i]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: RequestKind, ns: u64) -> LatencyEvent {
        LatencyEvent {
            kind,
            sent_ns: 1_000_000,
            answered_ns: 1_000_000 + ns,
        }
    }

    #[test]
    fn percentiles_per_kind_in_microseconds() {
        let mut latency = Latency::new();
        // New: 1..=100 µs, one each.
        for us in 1..=100 {
            latency.record(&event(RequestKind::New, us * 1000));
        }
        latency.record(&event(RequestKind::Cancel, 1_234_567));
        let s = latency.summary();
        assert_eq!(s.new.count, 100);
        let close = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!(
                (got - want).abs() <= want * 1e-3,
                "got {got} µs, want {want} µs within 0.1%"
            );
        };
        close(s.new.p50_us, 50.0);
        close(s.new.p90_us, 90.0);
        close(s.new.p99_us, 99.0);
        assert_eq!(s.new.max_us, Some(100.0));
        assert_eq!(s.new.mean_us, Some(50.5));
        assert_eq!(s.cancel.count, 1);
        assert_eq!(s.cancel.max_us, Some(1234.567));
        assert_eq!(s.cancel.p50_us, Some(1234.567), "one round trip: exact");
        assert_eq!(s.replace.count, 0);
        assert_eq!(s.replace.p50_us, None);
        assert_eq!(s.replace.mean_us, None);
    }

    #[test]
    fn buckets_cover_every_round_trip_once() {
        let mut latency = Latency::new();
        latency.record(&event(RequestKind::New, 90)); // first bucket (<= 0.1 µs)
        latency.record(&event(RequestKind::New, 1_000)); // <= 1 µs
        latency.record(&event(RequestKind::Replace, 1_001)); // <= 1.25 µs
        latency.record(&event(RequestKind::Cancel, 120_000_000_000)); // saturates at 60 s
        latency.record(&LatencyEvent {
            kind: RequestKind::New,
            sent_ns: 10,
            answered_ns: 5,
        }); // negative: 0
        let buckets = latency.buckets_us();
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 5);
        assert_eq!(buckets[0], (0.1, 2));
        let at = |us: f64| buckets.iter().find(|b| b.0 == us).map(|b| b.1);
        assert_eq!(at(1.0), Some(1));
        assert_eq!(at(1.25), Some(1));
        assert_eq!(at(63_000_000.0), Some(1), "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(Latency::new().buckets_us(), Vec::new());
    }
}
