//! The reconnect delay: exponential backoff with jitter, as a pure value.
//!
//! The reconnect itself is the caller's loop, in this order:
//!
//! 1. on any error from [`WsClient`](super::WsClient) (or its end), mark every book of the
//!    connection as needing a resync (`OrderBook::mark_needs_resync`) and drop the client;
//! 2. sleep [`Backoff::next_delay`], then connect again with the same combined-stream path
//!    ([`stream_path`](super::stream_path)): the subscription is the path, so reconnecting is
//!    resubscribing;
//! 3. once the stream is up, buffer the diffs, fetch a fresh REST snapshot per symbol
//!    ([`fetch_depth_snapshot`](super::fetch_depth_snapshot)) and apply it: the book drops the
//!    stale diffs and resumes (Binance's procedure);
//! 4. after the connection has delivered messages for a while
//!    ([`BACKOFF_RESET_AFTER`]), call [`Backoff::reset`] so the next outage starts short again.

use std::time::Duration;

/// The first delay's upper bound, and the smallest delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The largest delay: Binance asks clients not to hammer it, and a minute-long outage is rare.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a connection must stay up before the backoff resets.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// Exponential backoff with "equal jitter": the n-th delay (from 0) is uniform in
/// `[cap / 2, cap]` with `cap = min(BACKOFF_MAX, BACKOFF_MIN * 2^n)`, never below
/// [`BACKOFF_MIN`]. Deterministic for a given seed (seed it from the OS in production, so that
/// many clients do not reconnect in step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff whose jitter comes from `seed`.
    pub fn new(seed: u64) -> Backoff {
        Backoff {
            attempt: 0,
            // xorshift64 must not start at 0.
            rng: seed | 1,
        }
    }

    /// A backoff seeded from the operating system's random source.
    pub fn from_os() -> Result<Backoff, getrandom::Error> {
        Ok(Backoff::new(getrandom::u64()?))
    }

    /// Failed attempts since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the next delay.
    pub fn cap(&self) -> Duration {
        let min_ms = BACKOFF_MIN.as_millis() as u64;
        let max_ms = BACKOFF_MAX.as_millis() as u64;
        let cap_ms = min_ms
            .checked_shl(self.attempt.min(63))
            .filter(|&ms| ms >> self.attempt.min(63) == min_ms)
            .map_or(max_ms, |ms| ms.min(max_ms));
        Duration::from_millis(cap_ms)
    }

    /// The delay before the next attempt; counts the attempt.
    pub fn next_delay(&mut self) -> Duration {
        let cap_ms = self.cap().as_millis() as u64;
        self.attempt = self.attempt.saturating_add(1);
        let half = cap_ms / 2;
        let jitter = self.next_random() % (cap_ms - half + 1);
        let min_ms = BACKOFF_MIN.as_millis() as u64;
        Duration::from_millis((half + jitter).max(min_ms))
    }

    /// Back to the first delay (after a connection that held).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}
