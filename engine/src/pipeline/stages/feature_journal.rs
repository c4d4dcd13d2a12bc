//! What the strategy stage journals of its features: a [`FeatureSnapshot`] per instrument at
//! the cadence the config sets (`[features] journal`), held like the order requests and
//! appended as deferred work, after the event's orders have gone on. Hot path: the snapshots
//! wait in a buffer allocated once; a full buffer is journaled at once.

use levibot_shm::Appender;
use levibot_shm::records::{FeatureSnapshot, Record, feature_flag};

use crate::features::Features;

/// Snapshots held for journaling before they are journaled anyway.
pub const FEATURES_PENDING_MAX: usize = 256;

/// Shortest interval of [`FeatureCadence::Every`]: 1 ms (finer is "every book change").
pub const FEATURE_INTERVAL_NS_MIN: u64 = 1_000_000;
/// Longest interval of [`FeatureCadence::Every`]: one hour.
pub const FEATURE_INTERVAL_NS_MAX: u64 = 3_600_000_000_000;

/// When an instrument's features are journaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FeatureCadence {
    /// Never (the default: a live day's journal holds no features unless asked).
    #[default]
    Off,
    /// After every market event that changed the instrument's book (a book ticker, an applied
    /// depth update or snapshot); trades move the features without a snapshot.
    BookChange,
    /// At the first market event of the instrument in each interval of event time (intervals
    /// aligned to multiples of it since the Unix epoch): a fixed grid whatever the activity.
    Every { interval_ns: u64 },
}

impl FeatureCadence {
    /// `off`, `book`, or an interval such as `100ms`, `1s` (whole milliseconds or seconds
    /// within [`FEATURE_INTERVAL_NS_MIN`]..=[`FEATURE_INTERVAL_NS_MAX`]).
    pub fn parse(text: &str) -> Result<FeatureCadence, String> {
        let text = text.trim();
        match text {
            "off" => return Ok(FeatureCadence::Off),
            "book" => return Ok(FeatureCadence::BookChange),
            _ => {}
        }
        let (number, unit_ns) = if let Some(ms) = text.strip_suffix("ms") {
            (ms, 1_000_000u64)
        } else if let Some(s) = text.strip_suffix('s') {
            (s, 1_000_000_000u64)
        } else {
            return Err(format!(
                "{text:?} is not a cadence: \"off\", \"book\" or an interval such as \"100ms\" or \"1s\""
            ));
        };
        let interval_ns = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ns))
            .filter(|ns| (FEATURE_INTERVAL_NS_MIN..=FEATURE_INTERVAL_NS_MAX).contains(ns))
            .ok_or_else(|| {
                format!("{text:?} is not a whole number of ms or s between 1ms and 3600s")
            })?;
        Ok(FeatureCadence::Every { interval_ns })
    }
}

/// The snapshots due and not yet journaled, and when each instrument's next one is due.
#[derive(Debug)]
pub(super) struct FeatureJournal {
    cadence: FeatureCadence,
    strategy_id: u16,
    /// Per traded slot: the event time from which the next snapshot is due (`Every` only).
    next_due_ns: Vec<u64>,
    /// Capacity `FEATURES_PENDING_MAX`, never grown.
    pending: Vec<FeatureSnapshot>,
}

impl FeatureJournal {
    pub(super) fn new(cadence: FeatureCadence, strategy_id: u16, slots: usize) -> Self {
        let on = cadence != FeatureCadence::Off;
        FeatureJournal {
            cadence,
            strategy_id,
            next_due_ns: vec![0; if on { slots } else { 0 }],
            pending: Vec::with_capacity(if on { FEATURES_PENDING_MAX } else { 0 }),
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.cadence != FeatureCadence::Off
    }

    /// Whether the event at `ts_ns` on `slot` is one to snapshot (and, if so, when the next
    /// is due).
    #[inline]
    pub(super) fn due(&mut self, slot: usize, ts_ns: u64, book_changed: bool) -> bool {
        match self.cadence {
            FeatureCadence::Off => false,
            FeatureCadence::BookChange => book_changed,
            FeatureCadence::Every { interval_ns } => {
                let Some(next) = self.next_due_ns.get_mut(slot) else {
                    return false;
                };
                if ts_ns < *next {
                    return false;
                }
                *next = (ts_ns / interval_ns + 1) * interval_ns;
                true
            }
        }
    }

    /// Holds a snapshot of `features`; false when the buffer is full (journal it first).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn push(
        &mut self,
        instrument_id: u32,
        features: &Features,
        output: f64,
        model_id: u64,
        ts_ns: u64,
        recv_tsc: u64,
        flags: u16,
    ) -> bool {
        if self.pending.len() == self.pending.capacity() {
            return false;
        }
        let [
            mid,
            microprice,
            top_imbalance,
            ewma_mid,
            atr,
            trade_flow_imbalance,
            momentum,
        ] = features.values();
        self.pending.push(FeatureSnapshot {
            recv_tsc,
            ts_ns,
            mid,
            microprice,
            top_imbalance,
            ewma_mid,
            atr,
            trade_flow_imbalance,
            momentum,
            output: if flags & feature_flag::PAUSED != 0 {
                f64::NAN
            } else {
                output
            },
            model_id,
            instrument_id,
            strategy_id: self.strategy_id,
            flags,
        });
        true
    }

    pub(super) fn is_full(&self) -> bool {
        self.is_on() && self.pending.len() == self.pending.capacity()
    }

    /// Appends the held snapshots; returns how many, and whether any append failed.
    #[inline]
    pub(super) fn journal(&mut self, appender: &mut Appender) -> (usize, bool) {
        let mut failed = false;
        for snapshot in &self.pending {
            failed |= appender
                .append(FeatureSnapshot::RECORD_TYPE, snapshot.to_bytes())
                .is_err();
        }
        let appended = self.pending.len();
        self.pending.clear();
        (appended, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadences_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(FeatureCadence::parse("off"), Ok(FeatureCadence::Off));
        assert_eq!(
            FeatureCadence::parse(" book "),
            Ok(FeatureCadence::BookChange)
        );
        assert_eq!(
            FeatureCadence::parse("100ms"),
            Ok(FeatureCadence::Every {
                interval_ns: 100_000_000
            })
        );
        assert_eq!(
            FeatureCadence::parse("2s"),
            Ok(FeatureCadence::Every {
                interval_ns: 2_000_000_000
            })
        );
        assert_eq!(
            FeatureCadence::parse("3600s"),
            Ok(FeatureCadence::Every {
                interval_ns: FEATURE_INTERVAL_NS_MAX
            })
        );
        for bad in [
            "0ms",
            "3601s",
            "1.5s",
            "-1ms",
            "fast",
            "100",
            "ms",
            "99999999999999999999s",
        ] {
            let e = FeatureCadence::parse(bad).unwrap_err();
            assert!(e.contains(bad.trim_end_matches("ms")), "{bad}: {e}");
        }
        assert!(
            FeatureCadence::parse("fast")
                .unwrap_err()
                .contains("\"book\"")
        );
    }

    #[test]
    fn an_interval_snapshots_the_first_event_in_each_aligned_interval_per_instrument() {
        let mut j = FeatureJournal::new(FeatureCadence::Every { interval_ns: 100 }, 1, 2);
        // Instrument 0: events at 5, 50 (same interval), 100 (next), 250 (skips one), 299.
        let due: Vec<bool> = [5, 50, 100, 250, 299]
            .into_iter()
            .map(|t| j.due(0, t, true))
            .collect();
        assert_eq!(due, [true, false, true, true, false]);
        // Instrument 1 has its own grid; a slot past the table is never due.
        assert!(j.due(1, 60, false));
        assert!(!j.due(1, 99, false));
        assert!(!j.due(7, 1_000, true));
        let mut book = FeatureJournal::new(FeatureCadence::BookChange, 1, 1);
        assert!(book.due(0, 1, true) && !book.due(0, 1, false));
        let mut off = FeatureJournal::new(FeatureCadence::Off, 1, 1);
        assert!(!off.due(0, 1, true) && !off.is_on() && !off.is_full());
    }

    #[test]
    fn a_snapshot_holds_the_features_and_nan_for_what_does_not_exist_yet() {
        let mut j = FeatureJournal::new(FeatureCadence::BookChange, 7, 1);
        let mut f = Features::new(crate::features::FeatureConfig::DEFAULT).unwrap();
        assert!(j.push(3, &f, 0.5, 9, 10, 11, 0));
        let bid = levibot_shm::records::Level { px: 100, qty: 3 };
        let ask = levibot_shm::records::Level { px: 102, qty: 1 };
        f.on_book_top(bid, ask, 1_000);
        assert!(j.push(3, &f, 0.25, 9, 20, 21, feature_flag::PAUSED));
        let [empty, seen] = [j.pending[0], j.pending[1]];
        assert!(empty.mid.is_nan() && empty.momentum.is_nan() && empty.atr.is_nan());
        assert_eq!(
            (empty.output, empty.strategy_id, empty.model_id),
            (0.5, 7, 9)
        );
        assert_eq!(seen.mid, 101.0);
        // (100 x 1 + 102 x 3) / 4 and (3 - 1) / 4, by hand.
        assert_eq!(seen.microprice, 101.5);
        assert_eq!(seen.top_imbalance, 0.5);
        assert_eq!(seen.momentum, seen.mid - seen.ewma_mid);
        assert!(seen.output.is_nan(), "paused: no output");
        assert_eq!((seen.ts_ns, seen.recv_tsc, seen.instrument_id), (20, 21, 3));
        while j.push(3, &f, 0.0, 0, 0, 0, 0) {}
        assert!(j.is_full());
        assert_eq!(j.pending.len(), FEATURES_PENDING_MAX);
    }
}
