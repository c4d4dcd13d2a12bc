//! TSC calibration: how readers turn the raw TSC stamps in frames into nanoseconds and wall time.

use std::time::{SystemTime, UNIX_EPOCH};

/// The calibration a writer stores in every segment header. Raw stamps come from
/// [`quanta::Clock::raw`] (the TSC where it is invariant, otherwise a monotonic nanosecond clock,
/// in which case `ticks_per_ns` is 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TscCalibration {
    /// TSC ticks per nanosecond.
    pub ticks_per_ns: f64,
    /// A raw TSC reading ...
    pub tsc_ref: u64,
    /// ... and the wall clock (ns since the Unix epoch) at that reading.
    pub unix_ns_ref: u64,
}

impl TscCalibration {
    /// Reads quanta's calibration (measured once per process) and pairs a TSC reading with the
    /// wall clock, taking the midpoint of two TSC reads around `SystemTime::now`.
    pub fn measure(clock: &quanta::Clock) -> Self {
        const SPAN_TICKS: u64 = 1 << 32;
        let span_ns = clock.delta_as_nanos(0, SPAN_TICKS).max(1);
        let before = clock.raw();
        let unix_ns_ref = unix_now_ns();
        let after = clock.raw();
        TscCalibration {
            ticks_per_ns: SPAN_TICKS as f64 / span_ns as f64,
            tsc_ref: before + (after.wrapping_sub(before)) / 2,
            unix_ns_ref,
        }
    }

    /// Nanoseconds spanned by `ticks`.
    pub fn ticks_to_ns(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_ns
    }

    /// Wall-clock time (ns since the Unix epoch) of a raw stamp.
    #[inline]
    pub fn to_unix_ns(&self, tsc: u64) -> u64 {
        // Through i64 where the values fit (always, but for stamps a century apart), which gives
        // the same result as through i128, whose conversions to and from f64 are library calls
        // (`__floattidf`, `__fixdfti`) costing a backtest about 90 instructions a message. The
        // wrapped difference is exact when its sign is the true one.
        let delta_ticks = tsc.wrapping_sub(self.tsc_ref) as i64;
        if (tsc >= self.tsc_ref) != (delta_ticks >= 0) {
            return self.to_unix_ns_in_i128(tsc);
        }
        let delta_ns = delta_ticks as f64 / self.ticks_per_ns;
        if delta_ns.abs() >= I64_EXACT_BOUND {
            return self.to_unix_ns_in_i128(tsc);
        }
        (self.unix_ns_ref as i128 + (delta_ns as i64) as i128).max(0) as u64
    }

    /// [`to_unix_ns`](Self::to_unix_ns) all in i128, for stamps too far apart for i64.
    #[cold]
    fn to_unix_ns_in_i128(self, tsc: u64) -> u64 {
        let delta_ns = (tsc as i128 - self.tsc_ref as i128) as f64 / self.ticks_per_ns;
        (self.unix_ns_ref as i128 + delta_ns as i128).max(0) as u64
    }
}

/// Below this magnitude an `f64` truncates to the same integer through `i64` as through `i128`
/// (2^62: well inside `i64`).
const I64_EXACT_BOUND: f64 = (1u64 << 62) as f64;

/// Wall clock now, ns since the Unix epoch.
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_maps_now_to_wall_clock() {
        let clock = quanta::Clock::new();
        let cal = TscCalibration::measure(&clock);
        assert!(cal.ticks_per_ns > 0.0);
        let wall = unix_now_ns();
        let from_tsc = cal.to_unix_ns(clock.raw());
        // Generous: the two reads are microseconds apart; a bad calibration is off by seconds.
        assert!(from_tsc.abs_diff(wall) < 50_000_000, "{from_tsc} vs {wall}");
    }

    #[test]
    fn the_conversion_equals_the_i128_one_everywhere() {
        let seed = 0xc10c_u64;
        println!("seed {seed:#x}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let edges = [
            0,
            1,
            u64::MAX,
            u64::MAX / 2,
            1 << 63,
            (1 << 63) - 1,
            1 << 62,
        ];
        for _ in 0..100_000 {
            let pick = |rng: &mut fastrand::Rng| {
                if rng.u8(..4) == 0 {
                    edges[rng.usize(..edges.len())].wrapping_add(rng.u64(..3))
                } else {
                    rng.u64(..)
                }
            };
            let cal = TscCalibration {
                ticks_per_ns: [1.0, 2.9, 0.37, 1e-9, 3.0e9][rng.usize(..5)] * (1.0 + rng.f64()),
                tsc_ref: pick(&mut rng),
                unix_ns_ref: pick(&mut rng),
            };
            let tsc = pick(&mut rng);
            assert_eq!(
                cal.to_unix_ns(tsc),
                // The oracle: the conversion as first written, all in i128.
                cal.to_unix_ns_in_i128(tsc),
                "{cal:?} {tsc}"
            );
        }
    }
}
