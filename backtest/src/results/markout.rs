//! One instrument's markouts: each fill waits until its horizons pass, then is marked against
//! the mid at `fill time + horizon` and folded into sums. A fill is kept only until its last
//! horizon passes, and no more than a fixed number wait at once.

use std::collections::VecDeque;

/// A fill waiting for its horizons.
#[derive(Clone, Copy, Debug)]
struct Pending {
    t_ns: u64,
    px: i64,
    qty: i64,
    buy: bool,
}

/// One horizon's sums.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct HorizonSums {
    pub fills_marked: u64,
    /// Quantity units marked.
    pub qty_marked: i128,
    /// Sum of `signed (2 x mid - 2 x px) x qty`: twice the markout, notional units.
    pub total_half_units: i128,
    /// Sum of `bps x qty` over marked fills with a positive price.
    pub bps_qty: f64,
    /// Their quantity (units).
    pub bps_weight: f64,
    pub fills_past_end: u64,
    pub fills_without_mid: u64,
}

impl HorizonSums {
    pub fn mean_bps(&self) -> Option<f64> {
        (self.bps_weight > 0.0).then(|| self.bps_qty / self.bps_weight)
    }
}

#[derive(Clone, Debug)]
pub(super) struct Markouts {
    /// Ascending, distinct.
    horizons_ns: Vec<u64>,
    /// In fill time order (so in deadline order for every horizon).
    pending: VecDeque<Pending>,
    /// Per horizon: how many fills at the front of `pending` are marked at that horizon
    /// (non-increasing along the horizons).
    marked: Vec<usize>,
    pending_max: usize,
    /// Fills not taken because `pending_max` were waiting.
    pub dropped: u64,
    pub sums: Vec<HorizonSums>,
}

impl Markouts {
    /// `horizons_ns` ascending and distinct.
    pub fn new(horizons_ns: &[u64], pending_max: usize) -> Markouts {
        Markouts {
            horizons_ns: horizons_ns.to_vec(),
            pending: VecDeque::new(),
            marked: vec![0; horizons_ns.len()],
            pending_max,
            dropped: 0,
            sums: vec![HorizonSums::default(); horizons_ns.len()],
        }
    }

    pub fn horizons_ns(&self) -> &[u64] {
        &self.horizons_ns
    }

    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A fill to mark once its horizons pass (call [`Markouts::resolve_through`] with times
    /// before it first).
    pub fn push(&mut self, t_ns: u64, px: i64, qty: i64, buy: bool) {
        if self.horizons_ns.is_empty() {
            return;
        }
        if self.pending.len() >= self.pending_max {
            self.dropped += 1;
            return;
        }
        self.pending.push_back(Pending { t_ns, px, qty, buy });
    }

    /// Marks every waiting fill whose deadline (`t + horizon`) is at or before `last_ns`
    /// against `mid2` (bid + ask, the instrument's mid over that whole stretch: the caller
    /// calls this before each change of the mid, with the time just before the change).
    pub fn resolve_through(&mut self, last_ns: u64, mid2: Option<i64>) {
        for (h, &horizon) in self.horizons_ns.iter().enumerate() {
            while let Some(&fill) = self.pending.get(self.marked[h]) {
                if fill.t_ns.saturating_add(horizon) > last_ns {
                    break;
                }
                mark(&mut self.sums[h], fill, mid2);
                self.marked[h] += 1;
            }
        }
        // Every horizon is at least as far as the shortest: the longest decides what is done.
        let done = self.marked.last().copied().unwrap_or(0);
        if done > 0 {
            self.pending.drain(..done);
            for m in &mut self.marked {
                *m -= done;
            }
        }
    }

    /// The run ended at `end_ns` with the mid `mid2`: marks what is due, counts the rest as
    /// past the end.
    pub fn finish(&mut self, end_ns: u64, mid2: Option<i64>) {
        self.resolve_through(end_ns, mid2);
        for (h, sums) in self.sums.iter_mut().enumerate() {
            sums.fills_past_end += (self.pending.len() - self.marked[h]) as u64;
        }
        self.pending.clear();
        self.marked.fill(0);
    }
}

fn mark(sums: &mut HorizonSums, fill: Pending, mid2: Option<i64>) {
    let Some(mid2) = mid2 else {
        sums.fills_without_mid += 1;
        return;
    };
    let sign: i128 = if fill.buy { 1 } else { -1 };
    let diff2 = i128::from(mid2) - 2 * i128::from(fill.px);
    sums.fills_marked += 1;
    sums.qty_marked += i128::from(fill.qty);
    sums.total_half_units += sign * diff2 * i128::from(fill.qty);
    if fill.px > 0 {
        let bps = sign as f64 * diff2 as f64 / (2.0 * fill.px as f64) * 10_000.0;
        sums.bps_qty += bps * fill.qty as f64;
        sums.bps_weight += fill.qty as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_horizon_marks_against_the_mid_in_force_then() {
        // Horizons 10 and 100; fills at 0 (buy 2 @ 100) and 50 (sell 1 @ 104).
        let mut m = Markouts::new(&[10, 100], 16);
        m.push(0, 100, 2, true);
        // Mid 101 (bid+ask 202) from 5 to 59, then 103 from 60 to 150.
        m.resolve_through(4, None);
        m.resolve_through(49, Some(202));
        m.push(50, 104, 1, false);
        m.resolve_through(59, Some(202));
        // Buy at 0, +10: 101 - 100 = +1 per unit, 2 units. Sell at 50, +10 (60): the mid
        // changes at 60, so the sell's deadline 60 sees 103 (resolved at the next change).
        assert_eq!(m.sums[0].fills_marked, 1);
        assert_eq!(m.sums[0].total_half_units, 2 * 2);
        m.resolve_through(150, Some(206));
        // Sell +10: -(103 - 104) = +1. Buy +100: 103 - 100 = 3 x 2. Sell +100 (150): +1.
        assert_eq!(m.sums[0].total_half_units, 2 * (2 + 1));
        assert_eq!(m.sums[1].total_half_units, 2 * (6 + 1));
        assert_eq!(m.pending_len(), 0, "every horizon passed");
        let bps = m.sums[0].mean_bps().unwrap();
        let want = (2.0 * (1.0 / 100.0) + (1.0 / 104.0)) / 3.0 * 10_000.0;
        assert!((bps - want).abs() < 1e-9, "{bps} vs {want}");
    }

    #[test]
    fn past_the_end_and_without_a_mid_are_counted_apart() {
        let mut m = Markouts::new(&[10, 1_000], 16);
        m.push(0, 100, 1, true);
        m.push(5, 100, 1, true);
        m.finish(12, None);
        assert_eq!(m.sums[0].fills_without_mid, 1, "fill at 0 due at 10");
        assert_eq!(m.sums[0].fills_past_end, 1, "fill at 5 due at 15");
        assert_eq!(m.sums[1].fills_past_end, 2);
        assert_eq!(m.sums[0].fills_marked + m.sums[1].fills_marked, 0);
        assert_eq!(m.sums[0].mean_bps(), None);
    }

    #[test]
    fn waiting_fills_are_capped_and_counted() {
        let mut m = Markouts::new(&[1_000], 3);
        for t in 0..10 {
            m.push(t, 100, 1, true);
        }
        assert_eq!((m.pending_len(), m.dropped), (3, 7));
        let mut none = Markouts::new(&[], 3);
        none.push(0, 100, 1, true);
        assert_eq!((none.pending_len(), none.dropped), (0, 0));
    }
}
