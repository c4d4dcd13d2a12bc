//! Idle strategies: what a runner does after a duty cycle that did no work.
//!
//! Busy-spinning holds a core at 100% for the lowest wake-up latency; it is only for agents
//! pinned to an isolated core, never more of them than cores (two spinners on one core stall
//! each other for a whole scheduler slice). Yielding gives the core away when others want it.
//! Backoff spins, then yields, then parks for growing intervals: for cold agents and tests.

use std::time::Duration;

/// Idle cycles spent spinning before a backoff idler starts yielding.
pub const BACKOFF_SPINS_MAX: u32 = 100;
/// Idle cycles spent yielding before a backoff idler starts parking.
pub const BACKOFF_YIELDS_MAX: u32 = 10;
/// The first park of a backoff idler.
pub const BACKOFF_PARK_MIN_NS: u64 = 1_000;
/// The longest park of a backoff idler: bounds the wake-up delay of a cold agent.
pub const BACKOFF_PARK_MAX_NS: u64 = 1_000_000;

/// How an agent idles (from config: `busy_spin`, `yield`, `backoff`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleStrategy {
    BusySpin,
    Yield,
    #[default]
    Backoff,
}

impl IdleStrategy {
    /// Whether an agent idling this way keeps its core busy.
    pub fn spins(self) -> bool {
        self == IdleStrategy::BusySpin
    }
}

impl std::str::FromStr for IdleStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "busy_spin" => Ok(IdleStrategy::BusySpin),
            "yield" => Ok(IdleStrategy::Yield),
            "backoff" => Ok(IdleStrategy::Backoff),
            other => Err(format!("{other:?} is not busy_spin, yield or backoff")),
        }
    }
}

/// The state of one agent's idling.
#[derive(Debug)]
pub struct Idler {
    strategy: IdleStrategy,
    idle_cycles: u32,
    park_ns: u64,
}

impl Idler {
    pub fn new(strategy: IdleStrategy) -> Self {
        Idler {
            strategy,
            idle_cycles: 0,
            park_ns: BACKOFF_PARK_MIN_NS,
        }
    }

    /// Called after every duty cycle with the work it did.
    #[inline]
    pub fn idle(&mut self, work_count: usize) {
        if work_count > 0 {
            self.idle_cycles = 0;
            self.park_ns = BACKOFF_PARK_MIN_NS;
            return;
        }
        match self.strategy {
            IdleStrategy::BusySpin => std::hint::spin_loop(),
            IdleStrategy::Yield => std::thread::yield_now(),
            IdleStrategy::Backoff => {
                if self.idle_cycles < BACKOFF_SPINS_MAX {
                    self.idle_cycles += 1;
                    std::hint::spin_loop();
                } else if self.idle_cycles < BACKOFF_SPINS_MAX + BACKOFF_YIELDS_MAX {
                    self.idle_cycles += 1;
                    std::thread::yield_now();
                } else {
                    std::thread::park_timeout(Duration::from_nanos(self.park_ns));
                    self.park_ns = (self.park_ns * 2).min(BACKOFF_PARK_MAX_NS);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spins_then_yields_then_parks_longer_and_resets_on_work() {
        let mut idler = Idler::new(IdleStrategy::Backoff);
        for _ in 0..BACKOFF_SPINS_MAX + BACKOFF_YIELDS_MAX {
            idler.idle(0);
        }
        assert_eq!(idler.park_ns, BACKOFF_PARK_MIN_NS);
        idler.idle(0);
        assert_eq!(idler.park_ns, 2 * BACKOFF_PARK_MIN_NS);
        for _ in 0..20 {
            idler.idle(0);
        }
        assert_eq!(idler.park_ns, BACKOFF_PARK_MAX_NS);
        idler.idle(1);
        assert_eq!((idler.idle_cycles, idler.park_ns), (0, BACKOFF_PARK_MIN_NS));
    }

    #[test]
    fn strategies_parse_from_config_names() {
        assert_eq!("busy_spin".parse(), Ok(IdleStrategy::BusySpin));
        assert_eq!("yield".parse(), Ok(IdleStrategy::Yield));
        assert_eq!("backoff".parse(), Ok(IdleStrategy::Backoff));
        assert!("sleep".parse::<IdleStrategy>().is_err());
    }
}
