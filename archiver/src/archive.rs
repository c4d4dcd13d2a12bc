//! The archiving pass: which segments, in what order, and what happens on failure.
//!
//! Only sealed segments are archived ([`levibot_shm::read_segment_file_header`]): the segment
//! the daemon appends to, and the next one it pre-created, are not sealed. A segment is
//! archived in the form it has when the pass finds it: its compressed `journal-N.lvj.gz` if
//! retention has compressed it, its raw `journal-N.lvj` otherwise. The file is opened once and
//! read to the end, so a compression that removes the raw file meanwhile does not disturb the
//! copy (the open file stays readable), and once a segment is archived under one form the
//! other is never archived: the state names segments by epoch and index, not by file.
//!
//! Per target, per segment: record the upload as in progress (with its multipart id), upload,
//! read the object back and compare its SHA-256 with the file's, record it as archived, then
//! add it to its day's manifest. A crash at any point is resumed: an in-progress upload is
//! abandoned (multipart aborted, partial file removed) and started again, an archived segment
//! missing from its manifest is added, and a verified segment is never uploaded again. A
//! failure stops the target's pass; the next attempt waits a backoff that doubles up to
//! `backoff_max`, and nothing is lost meanwhile: the journal keeps the segments, since the
//! daemon's retention waits for the watermark each pass publishes ([`crate::watermark`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use levibot_shm::codes::{counter_type, label};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::{SegmentFile, list_segments, read_segment_file_header};

use crate::config::{Config, TargetConfig};
use crate::state::{
    COUNTERS_FILE_NAME, Entry, InProgress, MANIFEST_NAME, Manifest, State, StateError, segment_id,
    utc_day,
};
use crate::store::{RateLimit, Store, StoreError};
use crate::watermark::{self, Publisher};

/// Segments archived per target in one pass, at most (the next pass goes on).
const SEGMENTS_PER_PASS_MAX: usize = 10_000;
/// Counters allocated in the archiver's counters file.
const COUNTERS_CAPACITY: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the journal: {0}")]
    Journal(#[from] levibot_shm::ShmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "{object}: read back {got_size} bytes, SHA-256 {got_sha256}; sent {size} bytes, {sha256}"
    )]
    Mismatch {
        object: String,
        size: u64,
        sha256: String,
        got_size: u64,
        got_sha256: String,
    },
    #[error("{object}: not found after its upload")]
    Missing { object: String },
    #[error("{object}: the manifest is not JSON of a manifest: {reason}")]
    Manifest { object: String, reason: String },
}

/// A sealed segment of the journal, ready to archive.
#[derive(Clone, Debug)]
pub struct Sealed {
    pub file: SegmentFile,
    pub id: String,
    pub epoch: u64,
    pub created_unix_ns: u64,
}

/// A segment file of the journal, sealed or not, as a pass listed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub index: u64,
    pub epoch: u64,
    pub sealed: bool,
}

/// What a pass found in the journal.
#[derive(Clone, Debug, Default)]
pub struct Journaled {
    /// The sealed segments, oldest first: what may be archived.
    pub sealed: Vec<Sealed>,
    /// Every segment whose header could be read, in index order.
    pub segments: Vec<Listed>,
    /// The lowest index whose header could not be read this pass, if any.
    pub unreadable_from: Option<u64>,
}

/// The journal's segments, oldest first. A file that vanished between the listing and its
/// header (compressed meanwhile) is left to the next pass.
pub fn journal_segments(config: &Config) -> Result<Journaled, ArchiveError> {
    let mut found = Journaled::default();
    for file in list_segments(&config.journal_dir)? {
        match read_segment_file_header(&file) {
            Ok(header) => {
                found.segments.push(Listed {
                    index: header.index,
                    epoch: header.epoch,
                    sealed: header.sealed,
                });
                if header.sealed {
                    found.sealed.push(Sealed {
                        id: segment_id(header.epoch, header.index),
                        epoch: header.epoch,
                        created_unix_ns: header.created_unix_ns,
                        file,
                    });
                }
            }
            Err(e) => {
                tracing::warn!("{}: skipped this pass: {e}", file.path.display());
                found.unreadable_from.get_or_insert(file.index);
            }
        }
    }
    Ok(found)
}

/// A target's counters (`archive.<target>.*`).
struct Metrics {
    segments: Counter,
    bytes: Counter,
    lag_seconds: Counter,
    failures: Counter,
    pending: Counter,
}

impl Metrics {
    fn allocate(counters: &CountersWriter, target: &str) -> Result<Metrics, ArchiveError> {
        let counter = |field, type_id| counters.allocate(&label::archive(target, field), type_id);
        Ok(Metrics {
            segments: counter(label::ARCHIVE_SEGMENTS, counter_type::EVENTS)?,
            bytes: counter(label::ARCHIVE_BYTES, counter_type::EVENTS)?,
            lag_seconds: counter(label::ARCHIVE_LAG_SECONDS, counter_type::GAUGE)?,
            failures: counter(label::ARCHIVE_FAILURES, counter_type::EVENTS)?,
            pending: counter(label::ARCHIVE_PENDING, counter_type::GAUGE)?,
        })
    }
}

struct Target {
    config: TargetConfig,
    store: Store,
    metrics: Metrics,
    /// No attempt before this (after a failure).
    next_attempt: Option<Instant>,
    backoff: Duration,
}

/// What one pass did, over all targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub archived: usize,
    pub failures: usize,
    /// Sealed segments some target has not archived yet.
    pub pending: usize,
}

/// The archiver: its targets, its state and its counters.
pub struct Archiver {
    config: Config,
    state: State,
    targets: Vec<Target>,
    publisher: Publisher,
    _counters: CountersWriter,
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Archiver {
    /// Reads the state, makes the targets' clients and the counters file.
    pub fn new(config: Config) -> anyhow::Result<Archiver> {
        use anyhow::Context;
        std::fs::create_dir_all(&config.state_dir)
            .with_context(|| format!("{}: create_dir_all", config.state_dir.display()))?;
        let state = State::load(&config.state_dir)?;
        let counters = CountersWriter::create(
            config.state_dir.join(COUNTERS_FILE_NAME),
            COUNTERS_CAPACITY,
            unix_now_ns().max(1),
        )?;
        let mut targets = Vec::with_capacity(config.targets.len());
        for target in &config.targets {
            targets.push(Target {
                store: Store::new(&target.kind, config.request_timeout)
                    .with_context(|| format!("target {}", target.name))?,
                metrics: Metrics::allocate(&counters, &target.name)?,
                config: target.clone(),
                next_attempt: None,
                backoff: Duration::ZERO,
            });
        }
        let mut publisher = Publisher::new(&config.state_dir, &config.journal_dir);
        publisher.share_counters()?;
        Ok(Archiver {
            publisher,
            config,
            state,
            targets,
            _counters: counters,
        })
    }

    /// One pass over every target whose backoff has passed (all of them when `force`).
    pub async fn pass(&mut self, force: bool) -> Result<PassReport, ArchiveError> {
        let journaled = journal_segments(&self.config)?;
        let sealed = &journaled.sealed;
        let mut report = PassReport::default();
        let mut pending_any = BTreeSet::new();
        for i in 0..self.targets.len() {
            let due = self.targets[i]
                .next_attempt
                .is_none_or(|at| Instant::now() >= at);
            if force || due {
                match self.pass_target(i, sealed, &mut report).await {
                    Ok(()) => {
                        let target = &mut self.targets[i];
                        target.next_attempt = None;
                        target.backoff = Duration::ZERO;
                    }
                    Err(e) => {
                        let backoff_max = self.config.backoff_max;
                        let target = &mut self.targets[i];
                        target.metrics.failures.increment();
                        report.failures += 1;
                        target.backoff =
                            (target.backoff * 2).clamp(Duration::from_secs(1), backoff_max);
                        target.next_attempt = Some(Instant::now() + target.backoff);
                        tracing::warn!(
                            "target {}: {e}; next attempt in {:?}",
                            target.config.name,
                            target.backoff
                        );
                    }
                }
            }
            let target = &self.targets[i];
            let archived = self.state.targets.get(&target.config.name);
            let waiting: Vec<&Sealed> = sealed
                .iter()
                .filter(|s| archived.is_none_or(|t| !t.archived.contains_key(&s.id)))
                .collect();
            target.metrics.pending.set(waiting.len() as i64);
            let lag = waiting.first().map_or(0, |oldest| {
                unix_now_ns().saturating_sub(oldest.created_unix_ns) / 1_000_000_000
            });
            target.metrics.lag_seconds.set(lag as i64);
            pending_any.extend(waiting.iter().map(|s| s.id.clone()));
        }
        report.pending = pending_any.len();
        self.forget_gone(sealed)?;
        let names: Vec<String> = self.targets.iter().map(|t| t.config.name.clone()).collect();
        self.publisher
            .publish(watermark::watermark(&journaled, &self.state, &names))?;
        Ok(report)
    }

    /// Drops from the state the segments the journal no longer has and their manifests list.
    fn forget_gone(&mut self, sealed: &[Sealed]) -> Result<(), ArchiveError> {
        let present: BTreeSet<&str> = sealed.iter().map(|s| s.id.as_str()).collect();
        let mut changed = false;
        for target in self.state.targets.values_mut() {
            let unlisted: BTreeSet<String> = target.unlisted.iter().cloned().collect();
            let before = target.archived.len();
            target
                .archived
                .retain(|id, _| present.contains(id.as_str()) || unlisted.contains(id));
            changed |= target.archived.len() != before;
        }
        if changed {
            self.state.save(&self.config.state_dir)?;
        }
        Ok(())
    }

    async fn pass_target(
        &mut self,
        i: usize,
        sealed: &[Sealed],
        report: &mut PassReport,
    ) -> Result<(), ArchiveError> {
        let name = self.targets[i].config.name.clone();
        // An upload a crash (or a failure) interrupted: given up, to be started again.
        if let Some(in_progress) = self.state.target(&name).in_progress.clone() {
            self.targets[i]
                .store
                .abandon(&in_progress.object, in_progress.upload_id.as_deref())
                .await?;
            self.state.target(&name).in_progress = None;
            self.state.save(&self.config.state_dir)?;
        }
        self.list_in_manifests(i).await?;
        let mut done = 0;
        for segment in sealed {
            if done >= SEGMENTS_PER_PASS_MAX {
                break;
            }
            if self.state.target(&name).archived.contains_key(&segment.id) {
                continue;
            }
            let entry = self.archive_one(i, segment).await?;
            let target = &self.targets[i];
            target.metrics.segments.increment();
            target.metrics.bytes.add(entry.size as i64);
            tracing::info!(
                "target {name}: archived {} ({} bytes)",
                entry.object,
                entry.size
            );
            report.archived += 1;
            done += 1;
            self.list_in_manifests(i).await?;
        }
        Ok(())
    }

    /// Uploads one segment, reads it back and records it as archived (not yet in a manifest).
    async fn archive_one(&mut self, i: usize, segment: &Sealed) -> Result<Entry, ArchiveError> {
        let name = self.targets[i].config.name.clone();
        let file_name = segment
            .file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let day = utc_day(segment.created_unix_ns);
        let object = format!(
            "{}/{day}/{}/{file_name}",
            self.config.box_name, segment.epoch
        );
        let size = std::fs::metadata(&segment.file.path)
            .map_err(|source| StoreError::Io {
                path: segment.file.path.clone(),
                op: "stat",
                source,
            })?
            .len();
        let store = &self.targets[i].store;
        let upload_id = store.begin(&object, size, self.config.part_size).await?;
        self.state.target(&name).in_progress = Some(InProgress {
            object: object.clone(),
            upload_id: upload_id.clone(),
        });
        self.state.save(&self.config.state_dir)?;
        let store = &self.targets[i].store;
        let mut rate = RateLimit::new(self.config.rate_limit);
        let sent = store
            .upload(
                &object,
                &segment.file.path,
                upload_id.as_deref(),
                self.config.part_size,
                &mut rate,
            )
            .await?;
        if upload_id.is_some() {
            // Completed: nothing to abort any more, whatever the read-back finds.
            self.state.target(&name).in_progress = Some(InProgress {
                object: object.clone(),
                upload_id: None,
            });
            self.state.save(&self.config.state_dir)?;
        }
        let store = &self.targets[i].store;
        let described = store.describe(&object);
        let got = store
            .digest(&object)
            .await?
            .ok_or_else(|| ArchiveError::Missing {
                object: described.clone(),
            })?;
        if got != sent {
            return Err(ArchiveError::Mismatch {
                object: described,
                size: sent.size,
                sha256: sent.sha256,
                got_size: got.size,
                got_sha256: got.sha256,
            });
        }
        let entry = Entry {
            object,
            file: file_name,
            index: segment.file.index,
            epoch: segment.epoch,
            compressed: segment.file.compressed,
            size: sent.size,
            sha256: sent.sha256,
            created_unix_ns: segment.created_unix_ns,
            day,
        };
        let target = self.state.target(&name);
        target.in_progress = None;
        target.archived.insert(segment.id.clone(), entry.clone());
        target.unlisted.push(segment.id.clone());
        self.state.save(&self.config.state_dir)?;
        Ok(entry)
    }

    /// Adds the archived segments no manifest lists yet to their days' manifests.
    async fn list_in_manifests(&mut self, i: usize) -> Result<(), ArchiveError> {
        let name = self.targets[i].config.name.clone();
        let target_state = self.state.target(&name);
        if target_state.unlisted.is_empty() {
            return Ok(());
        }
        let entries: Vec<Entry> = target_state
            .unlisted
            .iter()
            .filter_map(|id| target_state.archived.get(id).cloned())
            .collect();
        let days: BTreeSet<String> = entries.iter().map(|e| e.day.clone()).collect();
        let store = &self.targets[i].store;
        for day in days {
            let key = format!("{}/{day}/{MANIFEST_NAME}", self.config.box_name);
            let mut manifest = read_manifest(store, &key)
                .await?
                .unwrap_or_else(|| Manifest {
                    box_name: self.config.box_name.clone(),
                    day: day.clone(),
                    ..Manifest::default()
                });
            for entry in entries.iter().filter(|e| e.day == day) {
                manifest.objects.insert(entry.object.clone(), entry.clone());
            }
            let bytes =
                serde_json::to_vec_pretty(&manifest).map_err(|e| ArchiveError::Manifest {
                    object: store.describe(&key),
                    reason: e.to_string(),
                })?;
            store.put_small(&key, bytes).await?;
        }
        self.state.target(&name).unlisted.clear();
        self.state.save(&self.config.state_dir)?;
        Ok(())
    }
}

/// A day's manifest from a target; `None` if there is none yet.
pub async fn read_manifest(store: &Store, key: &str) -> Result<Option<Manifest>, ArchiveError> {
    let Some(bytes) = store.get_small(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ArchiveError::Manifest {
            object: store.describe(key),
            reason: e.to_string(),
        })
}
