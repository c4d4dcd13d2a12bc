//! The backtest's virtual clock: nanoseconds since the Unix epoch, moved only by the run loop
//! to the time of the next event. The journal stamps its frames with it and every stage of
//! the engine reads it through the journal's clock (`Journal::open_with_clock`, and
//! `Pipeline::assemble` takes the journal's), so nothing in a backtest reads the machine's
//! time: `clippy.toml` in this crate refuses the wall-clock functions, and the golden test
//! shows two runs write the same bytes.

use std::sync::Arc;

use levibot_shm::{JournalClock, TscCalibration};

/// One virtual clock; clones of its `quanta::Clock` read the same time.
///
/// Its stamps (what `quanta::Clock::raw` returns, what the journal's frames and the stages'
/// records carry) are nanoseconds since the run's origin, one tick per ns; the calibration
/// maps tick 0 to the origin. Small stamps keep `TscCalibration::to_unix_ns` exact (its `f64`
/// holds every nanosecond for 104 days; nanoseconds since 1970 it would round to 512).
#[derive(Clone, Debug)]
pub struct VirtualClock {
    clock: quanta::Clock,
    mock: Arc<quanta::Mock>,
    origin_unix_ns: u64,
}

impl VirtualClock {
    /// A clock at `origin_unix_ns` (ns since the Unix epoch), tick 0.
    pub fn starting_at(origin_unix_ns: u64) -> VirtualClock {
        let (clock, mock) = quanta::Clock::mock();
        VirtualClock {
            clock,
            mock,
            origin_unix_ns,
        }
    }

    /// Now, ns since the Unix epoch.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.origin_unix_ns + self.mock.value()
    }

    /// The stamp (tick) of `unix_ns`.
    #[inline]
    pub fn tick_of(&self, unix_ns: u64) -> u64 {
        unix_ns.saturating_sub(self.origin_unix_ns)
    }

    /// Moves the clock to `unix_ns`; never back (an earlier time leaves it where it is).
    #[inline]
    pub fn advance_to(&self, unix_ns: u64) {
        let now = self.now_ns();
        if unix_ns > now {
            self.mock.increment(unix_ns - now);
        }
    }

    /// The time of tick `tick`, ns since the Unix epoch.
    pub fn unix_ns_of(&self, tick: u64) -> u64 {
        self.origin_unix_ns.saturating_add(tick)
    }

    /// Ticks to time: tick 0 at the origin, one tick per ns.
    pub fn calibration(&self) -> TscCalibration {
        TscCalibration {
            ticks_per_ns: 1.0,
            tsc_ref: 0,
            unix_ns_ref: self.origin_unix_ns,
        }
    }

    /// What a journal written by this run stamps with; `epoch` names the run (non-zero).
    pub fn journal_clock(&self, epoch: u64) -> JournalClock {
        JournalClock {
            clock: self.clock.clone(),
            calibration: self.calibration(),
            epoch: epoch.max(1),
        }
    }

    /// A handle that reads this clock (`raw()` is the virtual time).
    pub fn quanta(&self) -> quanta::Clock {
        self.clock.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_forward_only_and_every_handle_reads_it() {
        let origin = 1_700_000_000_000_000_000;
        let clock = VirtualClock::starting_at(origin);
        let handle = clock.quanta();
        assert_eq!((clock.now_ns(), handle.raw()), (origin, 0));
        clock.advance_to(origin + 86_400_000_000_001);
        assert_eq!(handle.raw(), 86_400_000_000_001);
        clock.advance_to(5);
        assert_eq!(clock.now_ns(), origin + 86_400_000_000_001);
        // Exact to the nanosecond a day in.
        assert_eq!(
            clock.calibration().to_unix_ns(handle.raw()),
            origin + 86_400_000_000_001
        );
    }
}
