//! The venue core that the market-data server and the FIX side share: the matching engine, its
//! feed encoder and the synthetic flow behind one mutex (a simulator: contention is no concern),
//! and the feed thread that drives the flow at a rate and flushes depth at an interval.
//!
//! Every change to a book goes through [`VenueCore::execute`] (or the flow), which hands the
//! engine's market updates to the feed encoder and publishes the trades at once, under the same
//! lock: messages reach the [`Hub`] in the engine's order, and a REST snapshot taken under the
//! lock has the update id of exactly the changes published or pending before it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use levibot_gateway::instrument::{InstrumentTable, exchange_info_json};

use super::hub::Hub;
use super::{SnapshotError, SnapshotSource};
use crate::feed::FeedEncoder;
use crate::flow::{SYNTHETIC_OWNER, SyntheticFlow};
use crate::matching::{FilterError, MatchingEngine, Notice, Outcome};

/// The update id every book starts at.
pub const FIRST_UPDATE_ID: u64 = 1_000;
/// Default interval between depth messages (`@depth@100ms`).
pub const DEPTH_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);
/// Most flow actions the feed thread runs in one wake-up (it catches up over several).
pub const FLOW_BATCH_MAX: u64 = 1_000;
/// Longest the feed thread sleeps at once (its reaction time to a stop or a rate change).
pub const FEED_SLEEP_MAX: Duration = Duration::from_millis(20);
/// Shortest sleep of the feed thread.
pub const FEED_SLEEP_MIN: Duration = Duration::from_millis(1);

/// Why a venue could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    #[error(transparent)]
    Filters(#[from] FilterError),
    #[error("{instruments} instruments but {fair_prices} fair prices")]
    FairPrices {
        instruments: usize,
        fair_prices: usize,
    },
    #[error("feed thread: {0}")]
    Spawn(std::io::Error),
}

/// What the lock guards.
#[derive(Debug)]
struct VenueState {
    engine: MatchingEngine,
    feed: FeedEncoder,
    flow: SyntheticFlow,
    /// Messages written by the feed encoder, waiting to be published.
    messages: Vec<String>,
    /// Notices for owners other than the synthetic traders, waiting for the FIX side
    /// ([`VenueCore::take_notices`]); bounded by `NOTICES_PENDING_MAX`.
    notices: Vec<Notice>,
}

/// Notices of the flow kept for the FIX side before the oldest are dropped (a venue with no FIX
/// server never takes them).
pub const NOTICES_PENDING_MAX: usize = 65_536;

/// The shared venue.
#[derive(Debug)]
pub struct VenueCore {
    state: Mutex<VenueState>,
    hub: Arc<Hub>,
    instruments: InstrumentTable,
}

/// Milliseconds since the Unix epoch (the feed's event times).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl VenueCore {
    /// A venue of `instruments` (ids `0..n`), whose synthetic traders start at
    /// `fair_ticks[i]` ticks for instrument `i` (deterministic for `seed`), publishing to `hub`.
    pub fn new(
        instruments: InstrumentTable,
        fair_ticks: Vec<i64>,
        seed: u64,
        hub: Arc<Hub>,
    ) -> Result<VenueCore, VenueError> {
        if fair_ticks.len() != instruments.len() {
            return Err(VenueError::FairPrices {
                instruments: instruments.len(),
                fair_prices: fair_ticks.len(),
            });
        }
        let list: Vec<_> = instruments.iter().collect();
        let engine = MatchingEngine::new(&list, FIRST_UPDATE_ID)?;
        let feed = FeedEncoder::new(&list);
        Ok(VenueCore {
            state: Mutex::new(VenueState {
                engine,
                feed,
                flow: SyntheticFlow::new(fair_ticks, seed),
                messages: Vec::new(),
                notices: Vec::new(),
            }),
            hub,
            instruments,
        })
    }

    pub fn instruments(&self) -> &InstrumentTable {
        &self.instruments
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn lock(&self) -> MutexGuard<'_, VenueState> {
        // The engine checks every input and does not panic on a bad order; a poisoned lock
        // would come from a bug elsewhere in a thread holding it: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, state: &mut VenueState) {
        self.hub.publish_all(state.messages.drain(..));
    }

    /// Runs one order-entry call on the engine (`|e| e.submit(order)`, `cancel`, `replace`,
    /// `mass_cancel`): its trades are published at once, its level changes with the next depth
    /// flush, and its notices wait for the FIX side ([`take_notices`](Self::take_notices)).
    /// Returns the outcome.
    pub fn execute(&self, call: impl FnOnce(&mut MatchingEngine) -> Outcome) -> Outcome {
        let mut state = self.lock();
        let outcome = call(&mut state.engine);
        let VenueState {
            feed,
            messages,
            notices,
            ..
        } = &mut *state;
        feed.apply(&outcome.market, now_ms(), messages);
        keep_notices(notices, &outcome);
        self.publish(&mut state);
        outcome
    }

    /// Runs `actions` actions of the synthetic flow; returns how many ran (fewer only if the
    /// venue has no instrument).
    pub fn run_flow(&self, actions: u64) -> u64 {
        let mut state = self.lock();
        let time = now_ms();
        let mut done = 0;
        for _ in 0..actions {
            let VenueState {
                engine,
                feed,
                flow,
                messages,
                notices,
            } = &mut *state;
            let Some(action) = flow.next(engine) else {
                break;
            };
            let outcome = SyntheticFlow::apply(engine, action);
            feed.apply(&outcome.market, time, messages);
            keep_notices(notices, &outcome);
            done += 1;
        }
        self.publish(&mut state);
        done
    }

    /// Publishes each instrument's pending level changes as one depth message and its
    /// bookTicker.
    pub fn flush_depth(&self) {
        self.flush_depth_and(|_| ());
    }

    /// [`flush_depth`](Self::flush_depth), then `read` of the engine under the same lock: what
    /// it sees is exactly the book as of the last depth message published.
    pub fn flush_depth_and<R>(&self, read: impl FnOnce(&MatchingEngine) -> R) -> R {
        let mut state = self.lock();
        let VenueState {
            engine,
            feed,
            messages,
            ..
        } = &mut *state;
        feed.flush_depth(now_ms(), |id| engine.top_levels(id), messages);
        self.publish(&mut state);
        read(&state.engine)
    }

    /// The notices of every owner but the synthetic traders since the last call (answers to
    /// requests, and fills of resting orders whoever caused them), for the FIX side to route to
    /// their sessions.
    pub fn take_notices(&self) -> Vec<Notice> {
        std::mem::take(&mut self.lock().notices)
    }

    /// Reads the engine under the lock.
    pub fn with_engine<R>(&self, read: impl FnOnce(&MatchingEngine) -> R) -> R {
        read(&self.lock().engine)
    }
}

/// Keeps the notices of `outcome` that are not the synthetic traders' own.
fn keep_notices(kept: &mut Vec<Notice>, outcome: &Outcome) {
    for notice in &outcome.notices {
        if notice.owner != SYNTHETIC_OWNER {
            if kept.len() == NOTICES_PENDING_MAX {
                kept.remove(0);
            }
            kept.push(*notice);
        }
    }
}

impl SnapshotSource for VenueCore {
    fn exchange_info(&self, symbols: &[String]) -> Result<String, SnapshotError> {
        if symbols.is_empty() {
            return Ok(exchange_info_json(self.instruments.iter()));
        }
        let chosen = symbols
            .iter()
            .map(|s| {
                self.instruments
                    .find(s.as_bytes())
                    .ok_or_else(|| SnapshotError::UnknownSymbol(s.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(exchange_info_json(chosen))
    }

    fn depth_snapshot(&self, symbol: &str, limit: usize) -> Result<String, SnapshotError> {
        let instrument = self
            .instruments
            .find(symbol.as_bytes())
            .ok_or_else(|| SnapshotError::UnknownSymbol(symbol.to_owned()))?;
        let id = instrument.id;
        let state = self.lock();
        let unknown = || SnapshotError::UnknownSymbol(symbol.to_owned());
        let (bids, asks) = state.engine.depth(id, limit).ok_or_else(unknown)?;
        let update_id = state.engine.update_id(id).ok_or_else(unknown)?;
        state
            .feed
            .snapshot(id, update_id, &bids, &asks)
            .ok_or_else(unknown)
    }
}

/// How the feed thread runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// Synthetic flow actions a second (0: none; changeable at run time).
    pub rate: u32,
    /// Interval between depth flushes.
    pub depth_interval: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            rate: 100,
            depth_interval: DEPTH_INTERVAL_DEFAULT,
        }
    }
}

struct FeedControl {
    stop: AtomicBool,
    rate: AtomicU32,
}

/// The thread that runs the flow and flushes depth; stopped by [`stop`](FeedThread::stop) or
/// when dropped.
pub struct FeedThread {
    control: Arc<FeedControl>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FeedThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedThread")
            .field("rate", &self.control.rate.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FeedThread {
    /// Starts driving `core`.
    pub fn spawn(core: Arc<VenueCore>, config: FeedConfig) -> Result<FeedThread, VenueError> {
        let control = Arc::new(FeedControl {
            stop: AtomicBool::new(false),
            rate: AtomicU32::new(config.rate),
        });
        let handle = {
            let control = Arc::clone(&control);
            std::thread::Builder::new()
                .name("venue-feed".into())
                .spawn(move || feed_loop(&core, &control, config.depth_interval))
                .map_err(VenueError::Spawn)?
        };
        Ok(FeedThread {
            control,
            handle: Some(handle),
        })
    }

    /// Changes the flow's rate (0 pauses it; depth is still flushed).
    pub fn set_rate(&self, rate: u32) {
        self.control.rate.store(rate, Ordering::Release);
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.control.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for FeedThread {
    fn drop(&mut self) {
        self.halt();
    }
}

fn feed_loop(core: &VenueCore, control: &FeedControl, depth_interval: Duration) {
    let depth_interval = depth_interval.max(FEED_SLEEP_MIN);
    let mut next_flush = Instant::now() + depth_interval;
    // The flow is paced from `epoch` at `rate`: `done` actions ran since.
    let mut epoch = Instant::now();
    let mut rate = control.rate.load(Ordering::Acquire);
    let mut done: u64 = 0;
    while !control.stop.load(Ordering::Acquire) {
        let now_rate = control.rate.load(Ordering::Acquire);
        if now_rate != rate {
            (rate, epoch, done) = (now_rate, Instant::now(), 0);
        }
        let now = Instant::now();
        let mut next_action = next_flush;
        if rate > 0 {
            let due = (now.duration_since(epoch).as_secs_f64() * f64::from(rate)) as u64;
            let run = due.saturating_sub(done).min(FLOW_BATCH_MAX);
            if run > 0 {
                done += core.run_flow(run);
            }
            if due > done + FLOW_BATCH_MAX {
                // Far behind (a stall): forget the backlog rather than burst.
                (epoch, done) = (now, 0);
            }
            next_action = epoch + Duration::from_secs_f64((done + 1) as f64 / f64::from(rate));
        }
        if Instant::now() >= next_flush {
            core.flush_depth();
            next_flush += depth_interval;
            if next_flush < Instant::now() {
                next_flush = Instant::now() + depth_interval;
            }
        }
        let wake = next_action.min(next_flush);
        let sleep = wake
            .saturating_duration_since(Instant::now())
            .clamp(FEED_SLEEP_MIN, FEED_SLEEP_MAX);
        std::thread::sleep(sleep);
    }
}
