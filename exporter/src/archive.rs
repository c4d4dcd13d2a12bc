//! The archiver's counters file (`archiver.lvc` in its state dir) on the exporter's page: one
//! series per target (`target` label) of `archive.<target>.{segments,bytes,failures,pending,
//! lag_seconds}`. No file (no archiver on this box, or not started yet) is no archive series,
//! not an error; a file replaced by a restarted archiver is reopened.

use std::path::{Path, PathBuf};

use levibot_shm::codes::label;
use levibot_shm::counters::CountersReader;

use super::metrics::{Metrics, labels, set_counter};

/// Where the packaged archiver keeps its counters (`state_dir` of
/// `/etc/levibot/archiver.toml`).
pub const DEFAULT_ARCHIVER_COUNTERS: &str = "/var/lib/levibot-archiver/archiver.lvc";

/// Follows the archiver's counters file, read-only.
pub struct ArchiveCounters {
    path: PathBuf,
    reader: Option<CountersReader>,
}

impl ArchiveCounters {
    pub fn new(path: &Path) -> ArchiveCounters {
        ArchiveCounters {
            path: path.to_owned(),
            reader: None,
        }
    }

    /// Reads the file (opening it if it appeared, reopening it if it was replaced) into the
    /// `levibot_archive_*` families; clears them when there is no file.
    pub fn read(&mut self, m: &Metrics) {
        if self
            .reader
            .as_ref()
            .is_some_and(CountersReader::is_replaced)
        {
            tracing::info!(path = %self.path.display(), "the archiver's counters file was replaced: reopening");
            self.reader = None;
        }
        if self.reader.is_none() {
            self.reader = CountersReader::open(&self.path).ok();
            // A new file (or none): the old targets' series go; the file has the current ones.
            clear(m);
        }
        let Some(reader) = &self.reader else {
            return;
        };
        for c in reader.counters() {
            let Some((target, field)) = c
                .label
                .strip_prefix(label::ARCHIVE_PREFIX)
                .and_then(|rest| rest.rsplit_once('.'))
            else {
                continue;
            };
            let series = labels("target", target);
            let count = u64::try_from(c.value).unwrap_or(0);
            match field {
                label::ARCHIVE_SEGMENTS => {
                    set_counter(&m.archive_segments.get_or_create(&series), count)
                }
                label::ARCHIVE_BYTES => set_counter(&m.archive_bytes.get_or_create(&series), count),
                label::ARCHIVE_FAILURES => {
                    set_counter(&m.archive_failures.get_or_create(&series), count)
                }
                label::ARCHIVE_PENDING => {
                    m.archive_pending.get_or_create(&series).set(c.value);
                }
                label::ARCHIVE_LAG_SECONDS => {
                    m.archive_lag.get_or_create(&series).set(c.value);
                }
                _ => {}
            }
        }
    }
}

fn clear(m: &Metrics) {
    m.archive_segments.clear();
    m.archive_bytes.clear();
    m.archive_failures.clear();
    m.archive_pending.clear();
    m.archive_lag.clear();
}
