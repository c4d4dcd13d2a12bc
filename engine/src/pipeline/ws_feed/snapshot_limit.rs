//! Bounded REST depth snapshot requests for [`WsFeed`](super::WsFeed): one pending
//! request per symbol at most, and no more request weight than the venue allows.
//!
//! - [`SnapshotRequests`]: a fixed table of one state per symbol, shared by the feed (the hot
//!   side, which asks when a symbol's stream lost an update) and the connector thread (the cold
//!   side, which fetches). Asking for a symbol already asked for, or whose snapshot is on its way,
//!   does nothing: a burst of gaps on one symbol is one request. Asking is one compare-and-swap:
//!   no allocation, no lock.
//! - [`WeightWindow`]: the request weight spent in the venue's rate-limit window (a sliding
//!   window, so that no window of the venue's, however aligned, sees more than the limit), with
//!   a fixed capacity.
//! - [`SnapshotScheduler`]: the connector's side: which asked symbol to fetch next, and when the
//!   weight allows it. A request the window has no room for waits; none is dropped.
//!
//! Binance counts `REQUEST_WEIGHT` per IP (exchangeInfo's `rateLimits`:
//! `{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}`), and a
//! depth snapshot weighs by its `limit` ([`depth_snapshot_weight`]). The daemon passes the limit
//! its exchangeInfo lists (`DaemonConfig::request_weight`), else [`WeightLimit::BINANCE_SPOT`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Binance spot's `REQUEST_WEIGHT` limit: 6000 per minute (per IP).
pub const BINANCE_REQUEST_WEIGHT_LIMIT: u32 = 6000;
/// The window Binance counts `REQUEST_WEIGHT` in (`"interval":"MINUTE","intervalNum":1`).
pub const BINANCE_REQUEST_WEIGHT_WINDOW: Duration = Duration::from_secs(60);

/// The request weight of `GET /api/v3/depth` with this `limit` (Binance spot: 1-100: 5,
/// 101-500: 25, 501-1000: 50, 1001-5000: 250).
pub const fn depth_snapshot_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// A venue's request weight limit: at most `limit` in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightLimit {
    pub limit: u32,
    pub window: Duration,
}

impl WeightLimit {
    /// Binance spot's documented default (6000 a minute).
    pub const BINANCE_SPOT: WeightLimit = WeightLimit {
        limit: BINANCE_REQUEST_WEIGHT_LIMIT,
        window: BINANCE_REQUEST_WEIGHT_WINDOW,
    };
}

/// The weight spent in the last `window`: a request may go when the weight spent in the window
/// ending now, plus its own, is within the limit. Each request is remembered until it leaves
/// the window, in a queue whose capacity is fixed when made (`limit / weight_min` requests fit
/// in a window at most).
#[derive(Debug)]
pub struct WeightWindow {
    limit: WeightLimit,
    /// (when, weight), oldest first; never more than `capacity`.
    spent: VecDeque<(Instant, u32)>,
    capacity: usize,
    used: u32,
}

impl WeightWindow {
    /// A window for requests of at least `weight_min` each.
    pub fn new(limit: WeightLimit, weight_min: u32) -> WeightWindow {
        let capacity = (limit.limit / weight_min.max(1)).max(1) as usize;
        WeightWindow {
            limit,
            spent: VecDeque::with_capacity(capacity),
            capacity,
            used: 0,
        }
    }

    pub fn limit(&self) -> WeightLimit {
        self.limit
    }

    /// The weight spent in the window ending at `now`.
    pub fn used(&mut self, now: Instant) -> u32 {
        self.expire(now);
        self.used
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, weight)) = self.spent.front() {
            if now.saturating_duration_since(at) < self.limit.window {
                break;
            }
            self.spent.pop_front();
            self.used -= weight;
        }
    }

    /// Spends `weight` at `now` if the window has room for it: `Ok`. Else `Err(when)`, the
    /// earliest time it will have (nothing is spent). A request heavier than the whole limit
    /// goes alone, when nothing else is in the window.
    pub fn try_take(&mut self, now: Instant, weight: u32) -> Result<(), Instant> {
        self.expire(now);
        let fits = self.used.saturating_add(weight) <= self.limit.limit || self.used == 0;
        if fits && self.spent.len() < self.capacity {
            self.spent.push_back((now, weight));
            self.used += weight;
            return Ok(());
        }
        // Room comes when enough of the oldest requests have left the window.
        let (mut used, mut len) = (self.used, self.spent.len());
        for &(at, spent) in &self.spent {
            used -= spent;
            len -= 1;
            if (used.saturating_add(weight) <= self.limit.limit || used == 0) && len < self.capacity
            {
                return Err(at + self.limit.window);
            }
        }
        // Not reached: with every request gone the window is empty.
        Err(now + self.limit.window)
    }
}

const IDLE: u8 = 0;
/// Asked for by the feed, not yet taken by the connector.
const ASKED: u8 = 1;
/// Taken by the connector: being fetched, or fetched and not yet handed to the feed.
const SERVING: u8 = 2;

/// One request state per symbol (by its index in the feed's symbol list), shared by the feed and
/// the connector.
#[derive(Debug)]
pub struct SnapshotRequests {
    state: Box<[AtomicU8]>,
    /// Symbols not idle (the feed looks for arrived snapshots only while this is > 0).
    outstanding: AtomicUsize,
}

impl SnapshotRequests {
    pub fn new(symbols: usize) -> SnapshotRequests {
        SnapshotRequests {
            state: (0..symbols).map(|_| AtomicU8::new(IDLE)).collect(),
            outstanding: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// The feed asks for symbol `index`'s snapshot. `true` when this is a new request; `false`
    /// when one is already pending (asked, being fetched, or fetched and not yet handed over),
    /// or `index` is out of range.
    #[inline]
    pub fn ask(&self, index: usize) -> bool {
        let Some(state) = self.state.get(index) else {
            return false;
        };
        let asked = state
            .compare_exchange(IDLE, ASKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if asked {
            self.outstanding.fetch_add(1, Ordering::AcqRel);
        }
        asked
    }

    /// Whether symbol `index` has a request pending.
    pub fn is_pending(&self, index: usize) -> bool {
        self.state
            .get(index)
            .is_some_and(|s| s.load(Ordering::Acquire) != IDLE)
    }

    /// Symbols with a request pending (asked, or being served).
    #[inline]
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// The first asked symbol at or after `from` (wrapping), not taken.
    pub fn first_asked(&self, from: usize) -> Option<usize> {
        let n = self.state.len();
        (0..n)
            .map(|k| (from + k) % n)
            .find(|&i| self.state[i].load(Ordering::Acquire) == ASKED)
    }

    /// The connector takes an asked symbol to fetch it. `false` if it was not asked.
    pub fn take(&self, index: usize) -> bool {
        self.state.get(index).is_some_and(|s| {
            s.compare_exchange(ASKED, SERVING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// The fetch failed: the symbol is asked again (served later, not dropped).
    pub fn retry(&self, index: usize) {
        if let Some(s) = self.state.get(index) {
            let _ = s.compare_exchange(SERVING, ASKED, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// The feed received symbol `index`'s snapshot: it may be asked for again.
    pub fn settle(&self, index: usize) {
        if let Some(s) = self.state.get(index)
            && s.compare_exchange(SERVING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// A new connection snapshots every symbol: the requests not yet taken are answered by it.
    pub fn answer_asked(&self) {
        for s in self.state.iter() {
            if s.compare_exchange(ASKED, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// What the connector does next about snapshot requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Fetch this symbol's snapshot now (its weight is spent; report a failure with
    /// [`SnapshotScheduler::failed`]).
    Fetch(usize),
    /// Symbols are asked for, but the weight window has no room before this time.
    WaitUntil(Instant),
    /// Nothing asked for.
    Nothing,
}

/// The connector's side of the snapshot requests: fetches asked symbols in turn (round robin,
/// so that a symbol asked for again at once cannot starve the others), within the weight limit.
#[derive(Debug)]
pub struct SnapshotScheduler {
    requests: Arc<SnapshotRequests>,
    window: WeightWindow,
    weight: u32,
    cursor: usize,
}

impl SnapshotScheduler {
    /// `weight`: that of one snapshot request (see [`depth_snapshot_weight`]).
    pub fn new(requests: Arc<SnapshotRequests>, limit: WeightLimit, weight: u32) -> Self {
        SnapshotScheduler {
            requests,
            window: WeightWindow::new(limit, weight),
            weight,
            cursor: 0,
        }
    }

    pub fn requests(&self) -> &Arc<SnapshotRequests> {
        &self.requests
    }

    /// The weight window (the connect's own snapshots are charged to it too).
    pub fn window(&mut self) -> &mut WeightWindow {
        &mut self.window
    }

    /// The weight of one snapshot.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    pub fn next(&mut self, now: Instant) -> Next {
        if self.requests.is_empty() {
            return Next::Nothing;
        }
        let Some(index) = self.requests.first_asked(self.cursor) else {
            return Next::Nothing;
        };
        if let Err(when) = self.window.try_take(now, self.weight) {
            return Next::WaitUntil(when);
        }
        if !self.requests.take(index) {
            // Answered by a new connection meanwhile (only the connector does that, so this
            // does not happen in practice); the weight is spent anyway.
            return Next::Nothing;
        }
        self.cursor = (index + 1) % self.requests.len();
        Next::Fetch(index)
    }

    /// The fetch of `index` failed: asked again, fetched later.
    pub fn failed(&self, index: usize) {
        self.requests.retry(index);
    }
}
