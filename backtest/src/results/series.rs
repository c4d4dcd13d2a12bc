//! Bounded series: the sampling grid the curves share (thinned by halves when it passes its
//! maximum), a thinned list of items (the fills drawn), the per-interval return statistics
//! (Sharpe, Sortino) folded in one pass, and the running drawdown.

/// The grid of sample times `origin + k x interval` the curves share, and which `k` they
/// keep: multiples of `stride`, which doubles (dropping every other kept point) each time the
/// kept points reach `max - 1` (the last place is for the run's end point). The first point
/// of a curve is kept whatever its `k` (a mid curve starts when its first mid comes).
#[derive(Clone, Debug)]
pub(super) struct Grid {
    pub stride: u64,
    /// Kept grid points so far: multiples of `stride` in `0..=` the last one pushed.
    kept: usize,
    max: usize,
}

impl Grid {
    /// `max` at least 3: a first point, another, and the end.
    pub fn new(max: usize) -> Grid {
        Grid {
            stride: 1,
            kept: 0,
            max: max.max(3),
        }
    }

    /// The first kept `k` at or after `from` (`None` past `u64`).
    pub fn next_kept(&self, from: u64) -> Option<u64> {
        from.div_ceil(self.stride).checked_mul(self.stride)
    }

    /// One more kept point (a multiple of `stride`) was pushed; `Some(new stride)` when the
    /// curves must now drop the points that are not multiples of it.
    pub fn pushed(&mut self) -> Option<u64> {
        self.kept += 1;
        if self.kept < self.max - 1 {
            return None;
        }
        self.stride *= 2;
        self.kept = self.kept.div_ceil(2);
        Some(self.stride)
    }
}

/// A curve on the grid: `(t_ns, value)`, `t_ns = origin + k x interval`.
#[derive(Clone, Debug, Default)]
pub(super) struct GridCurve {
    pub points: Vec<(u64, f64)>,
}

impl GridCurve {
    /// Keeps the first point and those whose `k` is a multiple of `stride`.
    pub fn thin(&mut self, origin: u64, interval: u64, stride: u64) {
        let mut first = true;
        self.points.retain(|&(t, _)| {
            let keep = first || ((t - origin) / interval).is_multiple_of(stride);
            first = false;
            keep
        });
    }

    /// Appends the run's end point unless the last point is already at that time.
    pub fn end_at(&mut self, t_ns: u64, value: f64) {
        if self.points.last().is_none_or(|&(t, _)| t < t_ns) {
            self.points.push((t_ns, value));
        }
    }
}

/// At most `max` items out of a numbered sequence (`0, 1, 2, ...`), spread evenly: those
/// whose number is a multiple of a stride that doubles (dropping every other kept item)
/// whenever `max - 1` are kept; the last item of the sequence is added at the end.
#[derive(Clone, Debug)]
pub(super) struct Thinned<T> {
    items: Vec<(u64, T)>,
    stride: u64,
    max: usize,
}

impl<T> Thinned<T> {
    /// `max` at least 2.
    pub fn new(max: usize) -> Thinned<T> {
        Thinned {
            items: Vec::new(),
            stride: 1,
            max: max.max(2),
        }
    }

    /// Whether item number `n` would be kept (to build it only then).
    pub fn wants(&self, n: u64) -> bool {
        n.is_multiple_of(self.stride)
    }

    pub fn push(&mut self, n: u64, item: T) {
        if !self.wants(n) {
            return;
        }
        self.items.push((n, item));
        if self.items.len() >= self.max - 1 {
            self.stride *= 2;
            let stride = self.stride;
            self.items.retain(|(n, _)| n.is_multiple_of(stride));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The kept items, with `last` (item number `n`, the sequence's last) if not kept already.
    pub fn finish(mut self, last: Option<(u64, T)>) -> Vec<T> {
        if let Some((n, item)) = last
            && self.items.last().is_none_or(|&(kept, _)| kept < n)
        {
            self.items.push((n, item));
        }
        self.items.into_iter().map(|(_, item)| item).collect()
    }
}

/// Mean, sample variance (Welford) and downside sum of squares of a stream of returns.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct ReturnStats {
    pub n: u64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
    /// Sum of `min(r, 0)^2`.
    downside_sq: f64,
}

impl ReturnStats {
    pub fn push(&mut self, r: f64) {
        self.n += 1;
        let delta = r - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (r - self.mean);
        if r < 0.0 {
            self.downside_sq += r * r;
        }
    }

    /// `count` returns of zero at once (an interval where equity did not move), merged as a
    /// second sample of mean 0 and no spread (Chan et al.'s pairwise update).
    pub fn push_zeros(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        let (na, nb) = (self.n as f64, count as f64);
        let n = na + nb;
        let delta = -self.mean;
        self.mean += delta * nb / n;
        self.m2 += delta * delta * na * nb / n;
        self.n += count;
    }

    /// Mean over sample standard deviation (`n - 1`); `None` with fewer than 2 returns or no
    /// spread.
    pub fn sharpe(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let stdev = (self.m2 / (self.n - 1) as f64).sqrt();
        (stdev > 0.0).then(|| self.mean / stdev)
    }

    /// Mean over the downside deviation `sqrt(mean(min(r, 0)^2))`; `None` with fewer than 2
    /// returns or no loss.
    pub fn sortino(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let downside = (self.downside_sq / self.n as f64).sqrt();
        (downside > 0.0).then(|| self.mean / downside)
    }
}

/// The running peak of equity and the largest fall from a peak, exact in integer units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Drawdown {
    pub peak: i128,
    pub peak_t_ns: u64,
    /// The largest `peak - equity` seen (0: equity never fell below a peak).
    pub max: i128,
    pub max_peak_t_ns: u64,
    pub max_trough_t_ns: u64,
}

impl Drawdown {
    /// Starts at equity 0 at `t_ns`.
    pub fn new(t_ns: u64) -> Drawdown {
        Drawdown {
            peak: 0,
            peak_t_ns: t_ns,
            max: 0,
            max_peak_t_ns: t_ns,
            max_trough_t_ns: t_ns,
        }
    }

    /// Equity became `equity` at `t_ns`. A new peak needs to be strictly higher (the earlier
    /// of equal peaks is kept); a new maximum fall strictly larger (the earlier is kept).
    pub fn update(&mut self, t_ns: u64, equity: i128) {
        if equity > self.peak {
            self.peak = equity;
            self.peak_t_ns = t_ns;
        } else if self.peak - equity > self.max {
            self.max = self.peak - equity;
            self.max_peak_t_ns = self.peak_t_ns;
            self.max_trough_t_ns = t_ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_thins_by_halves_and_stays_bounded() {
        let max = 10;
        let mut grid = Grid::new(max);
        let mut curve = GridCurve::default();
        let (origin, interval) = (1_000, 10);
        let mut k = 0;
        while k <= 100_000 {
            curve.points.push((origin + k * interval, k as f64));
            if let Some(stride) = grid.pushed() {
                curve.thin(origin, interval, stride);
            }
            assert!(curve.points.len() < max, "{} points", curve.points.len());
            k = grid.next_kept(k + 1).unwrap();
        }
        curve.end_at(origin + 100_000 * interval + 5, -1.0);
        assert!(curve.points.len() <= max);
        assert_eq!(curve.points[0], (origin, 0.0));
        assert_eq!(curve.points.last(), Some(&(origin + 1_000_005, -1.0)));
        // Evenly spread: every kept k a multiple of the stride, consecutive.
        let stride = grid.stride;
        for (i, &(t, _)) in curve.points[..curve.points.len() - 1].iter().enumerate() {
            assert_eq!((t - origin) / interval, i as u64 * stride);
        }
    }

    #[test]
    fn a_curve_keeps_its_first_point_off_the_stride() {
        let mut curve = GridCurve {
            points: vec![(3, 3.0), (4, 4.0), (5, 5.0), (6, 6.0), (8, 8.0)],
        };
        curve.thin(0, 1, 4);
        assert_eq!(curve.points, vec![(3, 3.0), (4, 4.0), (8, 8.0)]);
        curve.end_at(8, 9.0);
        assert_eq!(curve.points.len(), 3, "no second point at the same time");
    }

    #[test]
    fn thinned_items_keep_the_first_and_last_and_stay_bounded() {
        let mut items = Thinned::new(5);
        for n in 0..1_000u64 {
            items.push(n, n);
            assert!(items.len() < 5);
        }
        let kept = items.finish(Some((999, 999)));
        assert!(kept.len() <= 5, "{kept:?}");
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&999));
        assert!(kept.windows(2).all(|w| w[0] < w[1]));

        let few = Thinned::new(5);
        let mut few = few;
        few.push(0, 'a');
        few.push(1, 'b');
        assert_eq!(few.finish(Some((1, 'b'))), vec!['a', 'b']);
    }

    #[test]
    fn zeros_merge_like_pushing_them_one_by_one() {
        let mut merged = ReturnStats::default();
        let mut single = ReturnStats::default();
        for r in [0.5, -1.25, 2.0] {
            merged.push(r);
            single.push(r);
        }
        merged.push_zeros(7);
        for _ in 0..7 {
            single.push(0.0);
        }
        merged.push(-0.75);
        single.push(-0.75);
        assert_eq!(merged.n, single.n);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        assert!(close(merged.sharpe().unwrap(), single.sharpe().unwrap()));
        assert!(close(merged.sortino().unwrap(), single.sortino().unwrap()));
    }

    #[test]
    fn no_ratio_without_two_returns_or_spread() {
        let mut s = ReturnStats::default();
        s.push(1.0);
        assert_eq!((s.sharpe(), s.sortino()), (None, None));
        s.push(1.0);
        assert_eq!(s.sharpe(), None, "no spread");
        assert_eq!(s.sortino(), None, "no loss");
        let mut z = ReturnStats::default();
        z.push_zeros(10);
        assert_eq!((z.sharpe(), z.sortino()), (None, None));
    }

    #[test]
    fn drawdown_keeps_the_largest_fall_and_its_times() {
        let mut d = Drawdown::new(0);
        for (t, e) in [(1, 5), (2, 2), (3, 8), (4, 1), (5, 6), (6, 0), (7, 9)] {
            d.update(t, e);
        }
        // 8 at t=3 down to 0 at t=6.
        assert_eq!((d.max, d.max_peak_t_ns, d.max_trough_t_ns), (8, 3, 6));
        // Of equal peaks the earlier is the fall's start.
        let mut level = Drawdown::new(0);
        for (t, e) in [(1, 5), (2, 3), (3, 5), (4, 1)] {
            level.update(t, e);
        }
        assert_eq!(
            (level.max, level.max_peak_t_ns, level.max_trough_t_ns),
            (4, 1, 4)
        );
        let mut down = Drawdown::new(10);
        down.update(11, -4);
        assert_eq!(
            (down.max, down.max_peak_t_ns, down.max_trough_t_ns),
            (4, 10, 11)
        );
    }
}
