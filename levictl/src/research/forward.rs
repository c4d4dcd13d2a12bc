//! Forward mid returns joined to feature snapshots, streaming: each snapshot of an instrument
//! at event time `t` gets, for every horizon `h`, `mid(t + h) / mid(t) - 1`, where `mid(t + h)`
//! is the mid of the instrument's last snapshot at or before `t + h` (an as-of join, as DuckDB's
//! `ASOF JOIN ... ON f.t + h >= fwd.t` makes it). A return is `None` when either mid is missing,
//! or when the journal ends before `t + h` (the mid there is not known).
//!
//! Memory: a snapshot waits until a later one of its instrument is past its longest horizon;
//! at most [`PENDING_MAX`] wait at once, over all instruments (more is an error that names the
//! horizon: snapshots that dense want a shorter one, or a coarser `[features] journal`).

use std::collections::{BTreeMap, VecDeque};

/// Horizons a dataset may ask for at most.
pub const HORIZONS_MAX: usize = 16;
/// The longest horizon: one day.
pub const HORIZON_NS_MAX: u64 = 86_400_000_000_000;
/// Snapshots waiting for their forward mids at most, over all instruments.
pub const PENDING_MAX: usize = 20_000_000;

/// The horizons of a dataset: sorted, distinct, each in 1 ms ..= 1 day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Horizons(Vec<u64>);

impl Horizons {
    /// From durations such as `100ms`, `1s`, `10s`, `5m`, `1h`.
    pub fn parse(texts: &[String]) -> Result<Horizons, String> {
        if texts.is_empty() {
            return Err("at least one horizon is needed (--horizon 1s)".into());
        }
        if texts.len() > HORIZONS_MAX {
            return Err(format!("{} horizons; at most {HORIZONS_MAX}", texts.len()));
        }
        let mut ns: Vec<u64> = texts
            .iter()
            .map(|t| parse_duration_ns(t))
            .collect::<Result<_, _>>()?;
        ns.sort_unstable();
        if let Some(pair) = ns.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the horizon {} is given twice", name_of(pair[0])));
        }
        Ok(Horizons(ns))
    }

    pub fn ns(&self) -> &[u64] {
        &self.0
    }

    /// The column name of each horizon's return: `ret_100ms`, `ret_1s`, `ret_5m`.
    pub fn column_names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|&h| format!("ret_{}", name_of(h)))
            .collect()
    }

    fn longest(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }
}

/// `100ms`, `2s`, `5m`, `1h`: a whole number of one unit, 1 ms ..= 1 day.
fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let units: [(&str, u64); 4] = [
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    units
        .iter()
        .find_map(|(suffix, unit)| {
            let n = t.strip_suffix(suffix)?.parse::<u64>().ok()?;
            n.checked_mul(*unit)
        })
        .filter(|ns| (1_000_000..=HORIZON_NS_MAX).contains(ns))
        .ok_or_else(|| {
            format!(
                "horizon {t:?}: a whole number of ms, s, m or h between 1ms and 24h, such as 100ms or 10s"
            )
        })
}

/// The shortest name of a duration in whole units.
fn name_of(ns: u64) -> String {
    for (suffix, unit) in [
        ("h", 3_600_000_000_000u64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
    ] {
        if ns.is_multiple_of(unit) {
            return format!("{}{suffix}", ns / unit);
        }
    }
    format!("{}ms", ns / 1_000_000)
}

/// One instrument's snapshots waiting for their forward mids, in time order: (time, mid, row).
/// A waiting row's forward mids are among the points after it, so the waiting rows are also
/// the whole mid path that is still needed.
type Path<T> = VecDeque<(u64, f64, T)>;

/// Joins forward returns to snapshots, in each instrument's time order. `T` is the row a
/// snapshot becomes.
#[derive(Debug)]
pub struct ForwardJoin<T> {
    horizons: Horizons,
    paths: BTreeMap<u32, Path<T>>,
    pending: usize,
}

/// Too many snapshots wait for their forward mids at once.
#[derive(Debug, thiserror::Error)]
#[error(
    "more than {PENDING_MAX} feature snapshots fall within the longest horizon ({longest}): \
     ask for a shorter horizon, or journal the features less often"
)]
pub struct TooManyPending {
    longest: String,
}

impl<T> ForwardJoin<T> {
    pub fn new(horizons: Horizons) -> Self {
        ForwardJoin {
            horizons,
            paths: BTreeMap::new(),
            pending: 0,
        }
    }

    /// A snapshot of `instrument` at `t_ns` with its `mid` (NaN: none). Rows whose forward
    /// mids are now known go to `emit` with their returns (one per horizon). A time before the
    /// instrument's last counts as the last (a stamp never moves the path back).
    pub fn push(
        &mut self,
        instrument: u32,
        t_ns: u64,
        mid: f64,
        row: T,
        mut emit: impl FnMut(T, &[Option<f64>]),
    ) -> Result<(), TooManyPending> {
        if self.pending >= PENDING_MAX {
            return Err(TooManyPending {
                longest: name_of(self.horizons.longest()),
            });
        }
        let path = self.paths.entry(instrument).or_default();
        let t = path.back().map_or(t_ns, |&(last, _, _)| t_ns.max(last));
        path.push_back((t, mid, row));
        self.pending += 1;
        self.pending -= release(path, &self.horizons, Some(t), &mut emit);
        Ok(())
    }

    /// The journal ended: every waiting row goes to `emit`, with no return where `t + h` is
    /// past the instrument's last snapshot.
    pub fn finish(mut self, mut emit: impl FnMut(T, &[Option<f64>])) {
        for path in self.paths.values_mut() {
            self.pending -= release(path, &self.horizons, None, &mut emit);
        }
    }
}

/// Emits the waiting rows whose every forward mid is known: those whose `t + longest` is before
/// `now` (`None`: the end, all of them). Returns how many.
fn release<T>(
    path: &mut Path<T>,
    horizons: &Horizons,
    now: Option<u64>,
    emit: &mut impl FnMut(T, &[Option<f64>]),
) -> usize {
    let mut released = 0;
    let mut returns = [None; HORIZONS_MAX];
    let end = path.back().map_or(0, |p| p.0);
    while let Some(&(t, mid, _)) = path.front() {
        if now.is_some_and(|now| t.saturating_add(horizons.longest()) >= now) {
            break;
        }
        for (slot, &h) in returns.iter_mut().zip(horizons.ns()) {
            let at = t.saturating_add(h);
            *slot = if now.is_none() && at > end {
                None
            } else {
                // The last point at or before t + h: the front itself at least (t <= at).
                let i = path.partition_point(|p| p.0 <= at) - 1;
                let r = path[i].1 / mid - 1.0;
                r.is_finite().then_some(r)
            };
        }
        let Some((_, _, row)) = path.pop_front() else {
            break;
        };
        released += 1;
        emit(row, &returns[..horizons.ns().len()]);
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    fn horizons(texts: &[&str]) -> Horizons {
        Horizons::parse(&texts.iter().map(|t| t.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn horizons_parse_sorted_and_name_their_columns() {
        let h = horizons(&["10s", "100ms", "1m", "1500ms"]);
        assert_eq!(
            h.ns(),
            [100_000_000, 1_500_000_000, 10_000_000_000, 60_000_000_000]
        );
        assert_eq!(
            h.column_names(),
            ["ret_100ms", "ret_1500ms", "ret_10s", "ret_1m"]
        );
        let bad = |t: &[&str]| {
            Horizons::parse(&t.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_err()
        };
        assert!(bad(&[]).contains("at least one"));
        assert!(bad(&["1s", "1000ms"]).contains("1s is given twice"));
        for wrong in ["0ms", "25h", "1.5s", "1d", "fast", "-1s"] {
            assert!(bad(&[wrong]).contains(wrong), "{wrong}");
        }
        assert!(bad(&vec!["1s"; 17]).contains("at most 16"));
    }

    /// Every row with its returns, at the end.
    fn join(h: &[&str], points: &[(u32, u64, f64)]) -> Vec<(usize, Vec<Option<f64>>)> {
        let mut out = Vec::new();
        let mut j = ForwardJoin::new(horizons(h));
        for (row, &(instrument, t, mid)) in points.iter().enumerate() {
            j.push(instrument, t, mid, row, |r, ret| {
                out.push((r, ret.to_vec()))
            })
            .unwrap();
        }
        j.finish(|r, ret| out.push((r, ret.to_vec())));
        out.sort_by_key(|(r, _)| *r);
        out
    }

    #[test]
    fn each_return_is_the_mid_as_of_t_plus_h_over_the_mid_at_t() {
        const MS: u64 = 1_000_000;
        // Instrument 1: mids 100 @0, 110 @40ms, 121 @100ms, 99 @250ms. Instrument 2 between.
        let points = [
            (1, 0, 100.0),
            (2, 10 * MS, 50.0),
            (1, 40 * MS, 110.0),
            (1, 100 * MS, 121.0),
            (2, 120 * MS, f64::NAN),
            (1, 250 * MS, 99.0),
        ];
        let rows = join(&["100ms", "200ms"], &points);
        let r = |x: f64| Some(x);
        // @0: mid(100ms) = 121 (a point exactly at t + h counts), mid(200ms) = 121.
        assert_eq!(rows[0].1, [r(121.0 / 100.0 - 1.0), r(121.0 / 100.0 - 1.0)]);
        // @40ms: mid(140ms) = 121; mid(240ms) = 121 (99 comes at 250).
        assert_eq!(rows[2].1, [r(121.0 / 110.0 - 1.0), r(121.0 / 110.0 - 1.0)]);
        // @100ms: mid(200ms) = 121; mid(300ms) is past the journal's last point (250): unknown.
        assert_eq!(rows[3].1, [r(0.0), None]);
        // @250ms: both past the end.
        assert_eq!(rows[5].1, [None, None]);
        // Instrument 2: @10ms, its only later point (120ms) has no mid; a missing mid at t too.
        assert_eq!(rows[1].1, [r(0.0), None]);
        assert_eq!(rows[4].1, [None, None]);
        assert_eq!(rows.len(), points.len());
    }

    #[test]
    fn rows_leave_as_soon_as_their_forward_mids_are_known_and_time_never_goes_back() {
        const S: u64 = 1_000_000_000;
        let mut j = ForwardJoin::new(horizons(&["1s"]));
        let mut out = Vec::new();
        for (t, mid) in [(0, 10.0), (S / 2, 11.0), (S, 12.0)] {
            j.push(7, t, mid, t, |row, ret| out.push((row, ret[0])))
                .unwrap();
        }
        // Nothing is past 0 + 1s yet (a point at exactly 1s may still be followed by another).
        assert!(out.is_empty());
        // Past 2s, the mids at 1s, 1.5s and 2s are known.
        j.push(7, 2 * S + 1, 13.0, 2 * S + 1, |row, ret| {
            out.push((row, ret[0]))
        })
        .unwrap();
        assert_eq!(
            out,
            [
                (0, Some(12.0 / 10.0 - 1.0)),
                (S / 2, Some(12.0 / 11.0 - 1.0)),
                (S, Some(0.0))
            ]
        );
        // A stamp before the last one counts as the last (2s + 1 ns): its 1s is past the end.
        j.push(7, S, 14.0, 100, |row, ret| out.push((row, ret[0])))
            .unwrap();
        j.finish(|row, ret| out.push((row, ret[0])));
        assert_eq!(&out[3..], [(2 * S + 1, None), (100, None)]);
    }
}
