//! Timing one operation per call, on a set of inputs, beside other implementations in the same
//! run: what `decode` (a message per call) and `model` (an event per call) share.
//!
//! The timed passes are split into [`ROUNDS`] rounds; each round runs every implementation in
//! turn ([`Timer::round`]): an untimed warm-up of a fifth as many passes, the timed passes
//! (each call between two clock reads, into an HdrHistogram that never allocates while it
//! records), then a quarter as many passes timed as a whole (the batch mean: a call's cost
//! without the clock reads and their steps).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use quanta::Clock;

use crate::report::{LatencySummary, latency_histogram};

/// Timed passes are split into this many rounds; each round runs every implementation in turn,
/// so that a burst of noise on the VM falls on all of them rather than on one.
pub const ROUNDS: u64 = 10;

/// Passes of one round.
#[derive(Clone, Copy, Debug)]
pub struct Passes {
    /// Timed passes over all the inputs in all rounds together.
    pub timed: u64,
    pub rounds: u64,
}

impl Passes {
    pub fn new(timed: u64) -> Passes {
        Passes {
            timed,
            rounds: ROUNDS.min(timed),
        }
    }

    /// Timed passes of round `round` (the remainder goes to the first rounds).
    pub fn timed_in(&self, round: u64) -> u64 {
        self.timed / self.rounds + u64::from(round < self.timed % self.rounds)
    }

    pub fn warmup_in(&self, round: u64) -> u64 {
        (self.timed_in(round) / 5).max(1)
    }

    /// Passes timed as a whole, one clock-read pair per pass: the mean cost of a call without
    /// the clock reads and their 10 ns steps.
    pub fn batch_in(&self, round: u64) -> u64 {
        (self.timed_in(round) / 4).max(1)
    }

    pub fn warmup_total(&self) -> u64 {
        (0..self.rounds).map(|r| self.warmup_in(r)).sum()
    }
}

/// What one implementation's rounds added up to.
pub struct Measured {
    histogram: Histogram<u64>,
    /// Wall time of the timed passes, clock reads included.
    elapsed: Duration,
    batch_ns: u64,
    batch_calls: u64,
}

impl Measured {
    pub fn new() -> Result<Measured> {
        let mut histogram = latency_histogram()?;
        // Zeroing writes every count, so timing never page-faults on a fresh bucket.
        histogram.reset();
        Ok(Measured {
            histogram,
            elapsed: Duration::ZERO,
            batch_ns: 0,
            batch_calls: 0,
        })
    }

    /// Percentiles of the calls timed one by one.
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(&self.histogram, self.elapsed)
    }

    /// Mean ns per call of the passes timed as a whole.
    pub fn batch_ns_per_call(&self) -> f64 {
        self.batch_ns as f64 / self.batch_calls.max(1) as f64
    }
}

/// Runs the passes of one round into one [`Measured`].
pub struct Timer<'a> {
    pub clock: &'a Clock,
    pub passes: Passes,
    pub round: u64,
    pub measured: &'a mut Measured,
}

impl Timer<'_> {
    /// A warm-up, then every input timed on its own in each timed pass, then whole passes
    /// timed as one.
    pub fn round<T>(&mut self, inputs: &[T], mut op: impl FnMut(&T) -> Result<()>) -> Result<()> {
        let clock = self.clock;
        for _ in 0..self.passes.warmup_in(self.round) {
            for input in inputs {
                op(black_box(input))?;
            }
        }
        let histogram = &mut self.measured.histogram;
        let started = Instant::now();
        for _ in 0..self.passes.timed_in(self.round) {
            for input in inputs {
                let start = clock.raw();
                let result = op(black_box(input));
                let end = clock.raw();
                result?;
                histogram.saturating_record(clock.delta_as_nanos(start, end));
            }
        }
        self.measured.elapsed += started.elapsed();
        let batch = self.passes.batch_in(self.round);
        let start = clock.raw();
        for _ in 0..batch {
            for input in inputs {
                op(black_box(input))?;
            }
        }
        let end = clock.raw();
        self.measured.batch_ns += clock.delta_as_nanos(start, end);
        self.measured.batch_calls += batch * inputs.len() as u64;
        Ok(())
    }
}

/// Two clock reads with nothing between, timed as every call is, over `inputs` in `passes`:
/// what each per-call figure includes.
pub fn timer_overhead<T>(clock: &Clock, passes: Passes, inputs: &[T]) -> Result<LatencySummary> {
    let mut overhead = Measured::new()?;
    for round in 0..passes.rounds {
        let mut timer = Timer {
            clock,
            passes,
            round,
            measured: &mut overhead,
        };
        timer.round(inputs, |input| {
            black_box(input);
            Ok(())
        })?;
    }
    Ok(overhead.latency())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_add_up_over_rounds() {
        for timed in [10, 11, 19, 20_000, 20_003] {
            let p = Passes::new(timed);
            assert_eq!((0..p.rounds).map(|r| p.timed_in(r)).sum::<u64>(), timed);
            assert!((0..p.rounds).all(|r| p.warmup_in(r) >= 1 && p.batch_in(r) >= 1));
        }
    }
}
