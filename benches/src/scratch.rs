//! Scratch space for benchmark runs: a directory removed at the end, and the journal's
//! maintenance thread that runs beside a timed body as it does beside the daemon.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use levibot_shm::Journal;
use serde_json::json;

/// The maintenance thread sleeps this long between passes: a new spare segment is on its way
/// within 10 ms of a rollover, and the thread costs nothing while it sleeps.
const MAINTAIN_INTERVAL: Duration = Duration::from_millis(10);

/// How the maintenance thread's passes went during a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaintainStats {
    pub passes: u64,
    /// The longest pass: creating and prefaulting the next segment dominates it.
    pub longest: Duration,
}

impl MaintainStats {
    pub fn to_json(self) -> serde_json::Value {
        json!({
            "passes": self.passes,
            "longest_pass_ms": (self.longest.as_secs_f64() * 1e6).round() / 1e3,
        })
    }
}

/// Runs `body` while a cold thread calls `journal.maintain()` every `MAINTAIN_INTERVAL`, as the
/// daemon does: the next segment is created (and prefaulted) ahead of the writers, and old ones
/// are pruned. It sleeps between passes; it never spins.
pub fn with_maintainer<R>(
    journal: &Journal,
    body: impl FnOnce() -> Result<R>,
) -> Result<(R, MaintainStats)> {
    // The first pass runs before the body, so the first rollover already finds its segment.
    journal.maintain().context("maintaining the journal")?;
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let maintainer = s.spawn(|| -> Result<MaintainStats> {
            let mut stats = MaintainStats::default();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                journal.maintain().context("maintaining the journal")?;
                stats.passes += 1;
                stats.longest = stats.longest.max(started.elapsed());
                thread::sleep(MAINTAIN_INTERVAL);
            }
            Ok(stats)
        });
        let result = body();
        stop.store(true, Ordering::Relaxed);
        let maintained = maintainer
            .join()
            .map_err(|_| anyhow!("maintenance thread panicked"))?;
        Ok((result?, maintained?))
    })
}

/// A fresh directory for the run's journals, removed at the end (also on an error).
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn create(parent: Option<&Path>) -> Result<ScratchDir> {
        let parent = match parent {
            Some(parent) => parent.to_owned(),
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            None => std::env::temp_dir(),
        };
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!("levibot-bench-{}-{unique}", std::process::id()));
        // create_dir, not create_dir_all: it fails if the directory exists, so we never remove
        // anything we did not create.
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    /// Runs `f` on a journal directory inside this one, removed afterwards so that memory holds
    /// one run's segments at a time.
    pub fn with_dir<R>(&self, name: &str, f: impl FnOnce(&Path) -> Result<R>) -> Result<R> {
        let dir = self.path.join(name);
        let result = f(&dir);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        result
    }

    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.path)
            .with_context(|| format!("removing {}", self.path.display()))?;
        // Already gone: nothing left for Drop.
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
