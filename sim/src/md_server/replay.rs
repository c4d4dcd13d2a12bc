//! A recorded capture served in place of the synthetic flow: the stream's messages published in
//! order, paced by their recorded receive times (or faster, by a speed factor), and the REST
//! snapshots served from the recording's snapshot file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use levibot_gateway::capture::{CaptureError, capture_lines, url_query_param};

use super::hub::Hub;
use super::{SnapshotError, SnapshotSource};

/// Longest the replay thread sleeps at once (its reaction time to a stop).
pub const REPLAY_SLEEP_MAX: Duration = Duration::from_millis(20);
/// At full speed, messages published between two pauses of [`REPLAY_BURST_PAUSE`]: a burst
/// stays well inside a client's queue, which its connection drains every
/// [`CLIENT_POLL_INTERVAL`](super::CLIENT_POLL_INTERVAL).
pub const REPLAY_BURST_LEN: u64 = 256;
/// The pause after each burst at full speed.
pub const REPLAY_BURST_PAUSE: Duration = Duration::from_millis(5);
/// How often the replay thread looks for its first subscriber.
pub const REPLAY_WAIT_POLL: Duration = Duration::from_millis(10);

/// Why a capture could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: CaptureError },
    #[error("{path}: line {line}: not valid UTF-8")]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("{path}: line {line}: a snapshot URL without a symbol= parameter")]
    SnapshotSymbol { path: PathBuf, line: usize },
    #[error("replay thread: {0}")]
    Spawn(std::io::Error),
}

/// One recorded message: its receive time (seconds since the epoch) and text.
pub type TimedMessage = (f64, String);

fn read(path: &Path) -> Result<Vec<u8>, ReplayError> {
    std::fs::read(path).map_err(|source| ReplayError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The lines of a capture file (see [`levibot_gateway::capture`]) as (time, URL, text).
fn load_lines(path: &Path) -> Result<Vec<(f64, Option<String>, String)>, ReplayError> {
    let data = read(path)?;
    capture_lines(&data)
        .map(|line| {
            let line = line.map_err(|source| ReplayError::Format {
                path: path.to_owned(),
                source,
            })?;
            let text = std::str::from_utf8(line.body).map_err(|_| ReplayError::NotUtf8 {
                path: path.to_owned(),
                line: line.line,
            })?;
            Ok((
                line.epoch_seconds,
                line.url.map(str::to_owned),
                text.to_owned(),
            ))
        })
        .collect()
}

/// The stream messages of a capture file, in order.
pub fn load_capture(path: &Path) -> Result<Vec<TimedMessage>, ReplayError> {
    Ok(load_lines(path)?
        .into_iter()
        .map(|(t, _, text)| (t, text))
        .collect())
}

/// REST snapshots from a recording: for a symbol, the latest one recorded at or before the
/// replay's clock (the recorded time of the last message published), else its first. The body
/// is served as recorded, whatever `limit` asks.
#[derive(Debug)]
pub struct ReplaySnapshots {
    /// (upper-case symbol, recorded time, body), in file order.
    snapshots: Vec<(String, f64, String)>,
    /// The replay's clock: `f64` bits of the recorded time last published (0: none yet).
    clock: AtomicU64,
}

impl ReplaySnapshots {
    /// Loads a snapshot file (lines `<url> -> <epoch>: <json>`, the URL naming the symbol).
    pub fn load(path: &Path) -> Result<ReplaySnapshots, ReplayError> {
        let mut snapshots = Vec::new();
        let data = read(path)?;
        for line in capture_lines(&data) {
            let line = line.map_err(|source| ReplayError::Format {
                path: path.to_owned(),
                source,
            })?;
            let symbol = line.url.and_then(|u| url_query_param(u, "symbol")).ok_or(
                ReplayError::SnapshotSymbol {
                    path: path.to_owned(),
                    line: line.line,
                },
            )?;
            let body = std::str::from_utf8(line.body).map_err(|_| ReplayError::NotUtf8 {
                path: path.to_owned(),
                line: line.line,
            })?;
            snapshots.push((
                symbol.to_ascii_uppercase(),
                line.epoch_seconds,
                body.to_owned(),
            ));
        }
        Ok(ReplaySnapshots {
            snapshots,
            clock: AtomicU64::new(0f64.to_bits()),
        })
    }

    /// The symbols that have a snapshot.
    pub fn symbols(&self) -> Vec<&str> {
        let mut symbols: Vec<&str> = Vec::new();
        for (s, _, _) in &self.snapshots {
            if !symbols.contains(&s.as_str()) {
                symbols.push(s);
            }
        }
        symbols
    }

    fn advance(&self, recorded: f64) {
        self.clock.store(recorded.to_bits(), Ordering::Release);
    }
}

impl SnapshotSource for ReplaySnapshots {
    fn depth_snapshot(&self, symbol: &str, _limit: usize) -> Result<String, SnapshotError> {
        let clock = f64::from_bits(self.clock.load(Ordering::Acquire));
        let mut chosen: Option<&str> = None;
        for (s, t, body) in &self.snapshots {
            if !s.eq_ignore_ascii_case(symbol) {
                continue;
            }
            if chosen.is_none() || *t <= clock {
                chosen = Some(body);
            }
        }
        chosen
            .map(str::to_owned)
            .ok_or_else(|| SnapshotError::UnknownSymbol(symbol.to_owned()))
    }
}

/// How a capture is played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayConfig {
    /// 1.0: the recorded pace; 10.0: ten times faster; 0 or less: as fast as possible (in
    /// bursts of [`REPLAY_BURST_LEN`] messages, so that clients keep up).
    pub speed: f64,
    /// Wait for a first WebSocket subscriber before the first message.
    pub wait_for_subscriber: bool,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            speed: 1.0,
            wait_for_subscriber: true,
        }
    }
}

struct ReplayControl {
    stop: AtomicBool,
    done: AtomicBool,
    published: AtomicU64,
}

/// The thread that publishes a capture; stopped by [`stop`](ReplayThread::stop) or when
/// dropped.
pub struct ReplayThread {
    control: Arc<ReplayControl>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ReplayThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayThread")
            .field("published", &self.published())
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}

impl ReplayThread {
    /// Starts publishing `messages` to `hub`, moving `snapshots`' clock along.
    pub fn spawn(
        hub: Arc<Hub>,
        messages: Vec<TimedMessage>,
        snapshots: Arc<ReplaySnapshots>,
        config: ReplayConfig,
    ) -> Result<ReplayThread, ReplayError> {
        let control = Arc::new(ReplayControl {
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            published: AtomicU64::new(0),
        });
        let handle = {
            let control = Arc::clone(&control);
            std::thread::Builder::new()
                .name("venue-replay".into())
                .spawn(move || {
                    replay_loop(&hub, messages, &snapshots, config, &control);
                    control.done.store(true, Ordering::Release);
                })
                .map_err(ReplayError::Spawn)?
        };
        Ok(ReplayThread {
            control,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Messages published so far.
    pub fn published(&self) -> u64 {
        self.control.published.load(Ordering::Acquire)
    }

    /// Has every message been published (or the thread stopped)?
    pub fn is_done(&self) -> bool {
        self.control.done.load(Ordering::Acquire)
    }

    /// Stops the thread and waits for it.
    pub fn stop(&self) {
        self.control.stop.store(true, Ordering::Release);
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for ReplayThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sleeps until `until` in slices, `false` if stopped meanwhile.
fn sleep_until(until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(REPLAY_SLEEP_MAX));
    }
}

fn replay_loop(
    hub: &Hub,
    messages: Vec<TimedMessage>,
    snapshots: &ReplaySnapshots,
    config: ReplayConfig,
    control: &ReplayControl,
) {
    if config.wait_for_subscriber {
        while hub.subscriber_count() == 0 {
            if control.stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(REPLAY_WAIT_POLL);
        }
    }
    let start = Instant::now();
    let first = messages.first().map_or(0.0, |m| m.0);
    for (recorded, text) in messages {
        if config.speed > 0.0 {
            let offset = ((recorded - first) / config.speed).max(0.0);
            if !sleep_until(start + Duration::from_secs_f64(offset), &control.stop) {
                return;
            }
        } else if control.stop.load(Ordering::Acquire) {
            return;
        }
        snapshots.advance(recorded);
        hub.publish(text);
        let published = control.published.fetch_add(1, Ordering::Release) + 1;
        if config.speed <= 0.0 && published.is_multiple_of(REPLAY_BURST_LEN) {
            std::thread::sleep(REPLAY_BURST_PAUSE);
        }
    }
}
