//! Axes: value ranges that are never empty, "nice" ticks and their labels, and UTC time.
//!
//! Everything here is total: whatever the input (NaN, infinities, 1e308, 1e-300, one point,
//! all points equal), a range has `lo < hi`, both finite, and every number it yields is finite,
//! so the SVG never holds `NaN` or `inf` and nothing divides by zero.

use levibot_gateway::fix::civil_from_unix_days;

/// A value range with `lo < hi`, both finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Range {
    pub lo: f64,
    pub hi: f64,
}

impl Range {
    /// The range of the finite values (with `0` if `with_zero`), padded by 5% of its span on
    /// each side so that a curve does not run along the frame. `None` without a finite value.
    pub fn of(values: impl IntoIterator<Item = f64>, with_zero: bool) -> Option<Range> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            return None;
        }
        if with_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if lo == hi {
            return Some(Range::around(lo));
        }
        // Half-spans: `hi - lo` overflows for values of opposite signs near f64::MAX.
        let pad = (hi / 2.0 - lo / 2.0) * 0.1;
        let padded = |v: f64| if v.is_finite() { Some(v) } else { None };
        Some(Range {
            lo: padded(lo - pad).unwrap_or(lo),
            hi: padded(hi + pad).unwrap_or(hi),
        })
    }

    /// A range for one value (a flat curve): 5% of its magnitude either side, or ±1 when that
    /// is too small to be a range (0, subnormals).
    fn around(v: f64) -> Range {
        let mut pad = v.abs() * 0.05;
        if v - pad >= v + pad {
            pad = 1.0;
        }
        let (lo, hi) = (v - pad, v + pad);
        // Near ±f64::MAX one side overflows; the other cannot.
        match (lo.is_finite(), hi.is_finite()) {
            (true, true) => Range { lo, hi },
            (true, false) => Range { lo, hi: v },
            _ => Range { lo: v, hi },
        }
    }

    /// Where `v` falls, 0 at `lo` to 1 at `hi` (halves again, against overflow).
    pub fn fraction(&self, v: f64) -> f64 {
        let f = (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0);
        if f.is_finite() { f } else { 0.0 }
    }

    /// About `target` round ticks inside the range, each with its label. Empty when the
    /// range is too narrow for its magnitude to tell ticks apart.
    pub fn ticks(&self, target: f64) -> Vec<(f64, String)> {
        let span = (self.hi / 2.0 - self.lo / 2.0) * 2.0;
        let step = nice_step(if span.is_finite() { span } else { f64::MAX } / target);
        let (first, last) = ((self.lo / step).ceil(), (self.hi / step).floor());
        if !(step > 0.0 && first.is_finite() && last >= first && last - first <= 4.0 * target) {
            return Vec::new();
        }
        let magnitude = self.lo.abs().max(self.hi.abs());
        let mut ticks: Vec<(f64, String)> = Vec::new();
        // By index: past 2^53, `k += 1.0` would not move.
        for i in 0..=(last - first) as u64 {
            let v = (first + i as f64) * step;
            let inside = self.lo <= v && v <= self.hi;
            if inside && ticks.last().is_none_or(|(prev, _)| v > *prev) {
                ticks.push((v, number_label(v, step, magnitude)));
            }
        }
        ticks
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw` (for a positive finite `raw`).
fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let f = raw / power;
    // A little slack: 0.2 / 0.1 need not be exactly 2.
    let nice = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    let step = nice * power;
    if step > 0.0 && step.is_finite() {
        step
    } else {
        raw
    }
}

/// A tick's label: as many decimals as the step needs; scientific notation for magnitudes
/// past 1e7 or below 1e-3, with as many digits as tell ticks `step` apart.
pub(crate) fn number_label(v: f64, step: f64, magnitude: f64) -> String {
    // A zero tick computed as 3 * 0.1 - 0.3 reads 0, not -0.0 or 5.5e-17.
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    if !(1e-3..1e7).contains(&magnitude) {
        if v == 0.0 {
            return "0".to_owned();
        }
        let digits = (magnitude.log10().floor() - step.log10().floor()).clamp(0.0, 15.0) as usize;
        return format!("{v:.digits$e}");
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 15.0) as usize;
    format!("{v:.decimals$}")
}

/// A positive value with at most three significant digits and a k/M/G suffix: `0.25`, `10`,
/// `1.5k`, `20M`. The latency histogram's bucket labels, so that 1, 10, 100, 1k read as a
/// log scale.
pub(crate) fn short_label(v: f64) -> String {
    if !v.is_finite() {
        return if v > 0.0 { "∞" } else { "?" }.to_owned();
    }
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e12 => return format!("{v:.2e}"),
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        a if a == 0.0 || a >= 1e-3 => (v, ""),
        _ => return format!("{v:.2e}"),
    };
    let decimals = if scaled == 0.0 {
        0
    } else {
        (2.0 - scaled.abs().log10().floor()).clamp(0.0, 5.0) as usize
    };
    let mut text = format!("{scaled:.decimals$}");
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    text + suffix
}

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const MIN: u64 = 60 * S;
const HOUR: u64 = 60 * MIN;
pub(crate) const DAY: u64 = 24 * HOUR;

/// Time steps (ns) that read well on a clock; steps below a day divide a day, so ticks fall
/// on round UTC times.
const TIME_STEPS: [u64; 40] = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    US,
    2 * US,
    5 * US,
    10 * US,
    20 * US,
    50 * US,
    100 * US,
    200 * US,
    500 * US,
    MS,
    2 * MS,
    5 * MS,
    10 * MS,
    20 * MS,
    50 * MS,
    100 * MS,
    200 * MS,
    500 * MS,
    S,
    2 * S,
    5 * S,
    10 * S,
    15 * S,
    30 * S,
    MIN,
    2 * MIN,
    5 * MIN,
    10 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
];

/// Longer steps, in hours and then days.
const LONG_STEPS: [u64; 12] = [
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    91 * DAY,
    182 * DAY,
    365 * DAY,
];

/// A time range (ns since the Unix epoch) with `t0 < t1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub t0: u64,
    pub t1: u64,
}

impl TimeRange {
    /// The range of the times; a single time gets a second either side.
    pub fn of(times: impl IntoIterator<Item = u64>) -> Option<TimeRange> {
        let (mut t0, mut t1) = (u64::MAX, 0);
        for t in times {
            t0 = t0.min(t);
            t1 = t1.max(t);
        }
        if t0 > t1 {
            return None;
        }
        if t0 == t1 {
            (t0, t1) = (t0.saturating_sub(S), t1.saturating_add(S));
        }
        Some(TimeRange { t0, t1 })
    }

    /// Where `t` falls, 0 at `t0` to 1 at `t1`.
    pub fn fraction(&self, t: u64) -> f64 {
        (t as f64 - self.t0 as f64) / (self.t1 - self.t0) as f64
    }

    /// Ticks at round UTC times, about `target` of them, each with its label: `HH:MM:SS`
    /// (with the fraction a sub-second step needs), and the date below the first tick of each
    /// new day after the first; dates alone for steps of a day or more.
    pub fn ticks(&self, target: u64) -> Vec<(u64, String, Option<String>)> {
        let span = self.t1 - self.t0;
        let mut step = TIME_STEPS
            .iter()
            .chain(&LONG_STEPS)
            .copied()
            .find(|step| span / step <= target)
            .unwrap_or(365 * DAY);
        while span / step > target {
            step = step.saturating_mul(10);
        }
        let mut ticks = Vec::new();
        let mut t = self.t0.div_ceil(step).saturating_mul(step);
        let mut day = self.t0 / DAY;
        while t <= self.t1 && ticks.len() <= 2 * target as usize {
            let label = if step >= DAY { date(t) } else { clock(t, step) };
            let new_day = step < DAY && t / DAY != day;
            day = t / DAY;
            ticks.push((t, label, new_day.then(|| date(t))));
            match t.checked_add(step) {
                Some(next) => t = next,
                None => break,
            }
        }
        ticks
    }

    /// The axis caption: `time (UTC), 2024-03-01`, or the first and last dates.
    pub fn caption(&self) -> String {
        let (first, last) = (date(self.t0), date(self.t1));
        if first == last {
            format!("time (UTC), {first}")
        } else {
            format!("time (UTC), {first} to {last}")
        }
    }
}

/// `HH:MM:SS`, with the decimals of a second that `step` needs (3, 6 or 9).
pub(crate) fn clock(t: u64, step: u64) -> String {
    let secs = (t % DAY) / S;
    let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let ns = t % S;
    match step {
        s if s.is_multiple_of(S) => hms,
        s if s.is_multiple_of(MS) => format!("{hms}.{:03}", ns / MS),
        s if s.is_multiple_of(US) => format!("{hms}.{:06}", ns / US),
        _ => format!("{hms}.{ns:09}"),
    }
}

/// The step for [`clock`] that shows `t` to the millisecond, or to the second if it is whole.
pub(crate) fn precision(t: u64) -> u64 {
    if t.is_multiple_of(S) { S } else { MS }
}

/// The UTC date, `YYYY-MM-DD`.
pub(crate) fn date(t: u64) -> String {
    let (y, m, d) = civil_from_unix_days(t / DAY);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_across_leap_years_and_centuries() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400 * S), "2000-02-29");
        assert_eq!(date(1_709_251_199 * S), "2024-02-29");
        assert_eq!(date(1_709_251_200 * S), "2024-03-01");
        assert_eq!(date(4_107_542_400 * S), "2100-03-01");
        assert_eq!(date(u64::MAX), "2554-07-21");
    }

    #[test]
    fn clock_labels_carry_the_fraction_the_step_needs() {
        let t = 1_709_251_200 * S + 3_723 * S + 45_678_901;
        assert_eq!(clock(t, S), "01:02:03");
        assert_eq!(clock(t, 5 * MS), "01:02:03.045");
        assert_eq!(clock(t, 2 * US), "01:02:03.045678");
        assert_eq!(clock(t, 50), "01:02:03.045678901");
    }

    #[test]
    fn ranges_are_never_empty_nor_infinite() {
        for values in [
            vec![],
            vec![f64::NAN, f64::INFINITY],
            vec![0.0],
            vec![5e-324],
            vec![f64::MAX],
            vec![-f64::MAX, f64::MAX],
            vec![1e-300, 2e-300],
            vec![100.0, 100.0, 100.0],
        ] {
            let Some(r) = Range::of(values.iter().copied(), false) else {
                assert!(values.iter().all(|v| !v.is_finite()));
                continue;
            };
            assert!(
                r.lo < r.hi && r.lo.is_finite() && r.hi.is_finite(),
                "{values:?}"
            );
            for (v, label) in r.ticks(5.0) {
                assert!(v.is_finite() && !label.contains("NaN") && !label.contains("inf"));
                assert!((0.0..=1.0).contains(&r.fraction(v)), "{values:?} {v}");
            }
        }
    }

    #[test]
    fn labels_round_to_the_step() {
        let r = Range { lo: 0.0, hi: 1.0 };
        let labels: Vec<String> = r.ticks(5.0).into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(number_label(25_000_000.0, 5e6, 3e7), "2.5e7");
        assert_eq!(number_label(2.5e-6, 5e-7, 3e-6), "2.5e-6");
        assert_eq!(short_label(1500.0), "1.5k");
        assert_eq!(short_label(10.0), "10");
        assert_eq!(short_label(0.25), "0.25");
        assert_eq!(short_label(2_000_000.0), "2M");
    }

    #[test]
    fn time_ticks_fall_on_round_utc_times() {
        let t0 = 1_709_251_200 * S + 17;
        let ticks = TimeRange { t0, t1: t0 + HOUR }.ticks(8);
        let labels: Vec<&str> = ticks.iter().map(|(_, l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "00:10:00", "00:20:00", "00:30:00", "00:40:00", "00:50:00", "01:00:00"
            ]
        );
        let ticks = TimeRange {
            t0: t0 - HOUR,
            t1: t0 + HOUR,
        }
        .ticks(8);
        let dated: Vec<&str> = ticks.iter().filter_map(|(_, _, d)| d.as_deref()).collect();
        assert_eq!(dated, ["2024-03-01"]);
        assert!(
            TimeRange {
                t0: 0,
                t1: u64::MAX
            }
            .ticks(8)
            .len()
                <= 17
        );
    }
}
