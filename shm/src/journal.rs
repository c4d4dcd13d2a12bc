//! The writer side: opening (and recovering) a journal, appenders, rollover, heartbeat and
//! maintenance (pre-creating, sealing, compressing and pruning segments).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::{TscCalibration, unix_now_ns};
use crate::error::{Result, ShmError};
use crate::layout::*;
use crate::retention::{self, RetentionPolicy, RetentionReport};
use crate::segment::{
    Claim, FrameStamp, SegmentMap, Slot, WritableSegment, check_header, read_and_check_header,
    read_segment_header,
};

/// How to open a journal for writing.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// Directory of the segments (created if missing), e.g. `/dev/shm/levibot`.
    pub dir: PathBuf,
    /// Bytes per segment: a power of two in `SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX`. Fixed when the
    /// journal is created; a reopened journal keeps the size its segments have.
    pub segment_size: usize,
    /// Touch every page of a new segment when creating it, so that appends never page-fault.
    pub prefault: bool,
    /// What `maintain` compresses and prunes.
    pub retention: RetentionPolicy,
}

impl JournalConfig {
    /// A config with 64 MiB segments, prefaulting on, and the default retention.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalConfig {
            dir: dir.into(),
            segment_size: 64 << 20,
            prefault: true,
            retention: RetentionPolicy::default(),
        }
    }

    fn check(&self) -> Result<()> {
        let size = self.segment_size;
        if !size.is_power_of_two() || !(SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX).contains(&size) {
            return Err(ShmError::Config {
                key: "segment_size",
                reason: format!(
                    "{size} is not a power of two in {SEGMENT_SIZE_MIN}..={SEGMENT_SIZE_MAX}"
                ),
            });
        }
        self.retention.check()
    }
}

/// What recovery found and did when a journal was reopened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether there was a journal to recover (false: a new one was created).
    pub recovered: bool,
    /// Unsealed segments that were scanned and repaired.
    pub segments_scanned: usize,
    /// Frames claimed but never committed by the previous run, turned into padding.
    pub frames_cut: usize,
    /// Bytes of those frames (and of claims that never got their marker).
    pub bytes_cut: usize,
    /// Committed frames found in the scanned segments.
    pub frames_committed: u64,
    /// The position just after the last committed frame of the previous run.
    pub end_of_previous_run: Option<Position>,
    /// The segment this run appends to.
    pub first_segment: u64,
}

struct RollState {
    current: Arc<WritableSegment>,
    /// The segment after `current`, created (and wrapped in its `Arc`) ahead of time by
    /// `maintain`, so that a rollover neither allocates nor makes a syscall.
    spare: Option<Arc<WritableSegment>>,
    /// The segment before `current`, dropped (unmapped) by `maintain` on its cold thread rather
    /// than by the appender that rolled over. Appenders still filling it hold their own `Arc`.
    previous: Option<Arc<WritableSegment>>,
}

/// What a journal and its appenders share: where it is, how its segments are made, the
/// writers' sequences and the current segment (behind the roll lock).
struct JournalCore {
    dir: PathBuf,
    segment_size: usize,
    payload_len_max: usize,
    prefault: bool,
    retention: RetentionPolicy,
    epoch: u64,
    calibration: TscCalibration,
    clock: quanta::Clock,
    /// Bit `w` is set while an appender with writer id `w` exists.
    writers_in_use: AtomicU64,
    /// Next sequence per writer id, handed to a new appender and taken back when it drops.
    next_sequences: Mutex<[u64; WRITERS_MAX]>,
    /// Taken only to roll over or maintain, never by an append that fits.
    roll: Mutex<RollState>,
    /// Segment index from which `maintain` prunes nothing (`NO_RETENTION_FLOOR`: none).
    retention_floor: AtomicU64,
    _lock_file: File,
}

impl JournalCore {
    /// Now by the journal's clock: the machine's, or a backtest's virtual one, so that what a
    /// backtest writes (segment creation times included) does not depend on when it ran.
    fn now_unix_ns(&self) -> u64 {
        self.calibration.to_unix_ns(self.clock.raw())
    }
}

/// `JournalCore::retention_floor` when no floor is set.
const NO_RETENTION_FLOOR: u64 = u64::MAX;

/// What a journal stamps its frames with ([`quanta::Clock::raw`]), the calibration that turns
/// those stamps into time, and the run's epoch: measured by [`Journal::open`], given to
/// [`Journal::open_with_clock`] (a backtest's virtual clock: `quanta::Clock::mock()`, one
/// tick a nanosecond from the run's origin, which the calibration maps to its time).
#[derive(Clone, Debug)]
pub struct JournalClock {
    pub clock: quanta::Clock,
    pub calibration: TscCalibration,
    /// Non-zero.
    pub epoch: u64,
}

/// A journal open for writing. Cheap to clone handles come from [`Journal::appender`].
pub struct Journal {
    shared: Arc<JournalCore>,
    recovery: RecoveryReport,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.shared.dir)
            .field("segment_size", &self.shared.segment_size)
            .field("epoch", &self.shared.epoch)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens the journal in `config.dir` for writing, creating it if there is none, and
    /// otherwise recovering what the previous writer left (see [`RecoveryReport`]). This run
    /// always starts a new segment with a new epoch, so that every segment has one writer run and
    /// one TSC calibration.
    pub fn open(config: &JournalConfig) -> Result<Journal> {
        let clock = quanta::Clock::new();
        let calibration = TscCalibration::measure(&clock);
        Journal::open_with_clock(
            config,
            JournalClock {
                clock,
                calibration,
                epoch: new_epoch(),
            },
        )
    }

    /// [`open`](Self::open), stamping frames with a given clock and writing its calibration
    /// and epoch into the segment headers, instead of the machine's: a backtest's virtual
    /// clock, so that the same run writes the same frames. Nothing else differs.
    pub fn open_with_clock(config: &JournalConfig, given: JournalClock) -> Result<Journal> {
        config.check()?;
        let dir = &config.dir;
        fs::create_dir_all(dir).map_err(|e| ShmError::io(dir, "create_dir_all", e))?;
        let lock_path = dir.join("writer.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ShmError::io(&lock_path, "open", e))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(ShmError::WriterLocked { dir: dir.clone() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(ShmError::io(&lock_path, "flock", e)),
        }

        let JournalClock {
            clock,
            calibration,
            epoch,
        } = given;
        let listing = list_segments(dir)?;

        let (recovery, next_sequences, segment_size) = if listing.is_empty() {
            (
                RecoveryReport::default(),
                [1u64; WRITERS_MAX],
                config.segment_size,
            )
        } else {
            recover(&listing)?
        };
        let first_index = listing.last().map_or(0, |s| s.index + 1);
        remove_leftover_temporaries(dir)?;
        let current = WritableSegment::create(
            dir,
            first_index,
            segment_size,
            epoch,
            &calibration,
            calibration.to_unix_ns(clock.raw()),
            config.prefault,
        )?;
        let shared = Arc::new(JournalCore {
            dir: dir.clone(),
            segment_size,
            payload_len_max: PAYLOAD_LEN_MAX.min(segment_size / 4 - FRAME_HEADER_LEN),
            prefault: config.prefault,
            retention: config.retention.clone(),
            epoch,
            calibration,
            clock,
            writers_in_use: AtomicU64::new(0),
            next_sequences: Mutex::new(next_sequences),
            roll: Mutex::new(RollState {
                current: Arc::new(current),
                spare: None,
                previous: None,
            }),
            retention_floor: AtomicU64::new(NO_RETENTION_FLOOR),
            _lock_file: lock_file,
        });
        Ok(Journal {
            shared,
            recovery: RecoveryReport {
                first_segment: first_index,
                ..recovery
            },
        })
    }

    /// What recovery did when this journal was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn segment_size(&self) -> usize {
        self.shared.segment_size
    }

    /// This writer run's epoch, stamped into every segment it creates.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    pub fn calibration(&self) -> TscCalibration {
        self.shared.calibration
    }

    /// The clock this journal stamps frames with (see [`JournalClock`]): the one whatever
    /// writes into it should stamp with too.
    pub fn clock(&self) -> quanta::Clock {
        self.shared.clock.clone()
    }

    /// The largest payload one frame may carry in this journal.
    pub fn payload_len_max(&self) -> usize {
        self.shared.payload_len_max
    }

    /// An appender for `writer_id` (`0..WRITERS_MAX`), one at a time per id. Its sequence goes
    /// on from the last frame that id committed, in this run or a recovered one.
    pub fn appender(&self, writer_id: u16) -> Result<Appender> {
        let bit = 1u64
            .checked_shl(writer_id as u32)
            .filter(|_| (writer_id as usize) < WRITERS_MAX)
            .ok_or(ShmError::WriterIdUnavailable {
                writer_id,
                max: WRITERS_MAX,
            })?;
        if self.shared.writers_in_use.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Err(ShmError::WriterIdUnavailable {
                writer_id,
                max: WRITERS_MAX,
            });
        }
        let next_sequence = lock(&self.shared.next_sequences)[writer_id as usize];
        let segment = lock(&self.shared.roll).current.clone();
        segment.set_writer_first_sequence(writer_id, next_sequence);
        Ok(Appender {
            shared: self.shared.clone(),
            segment,
            writer_id,
            next_sequence,
            clock: self.shared.clock.clone(),
            payload_len_max: self.shared.payload_len_max,
        })
    }

    /// Records that the writer is alive (readers such as the exporter judge staleness by it).
    /// Call it from a cold thread, every second or so.
    pub fn heartbeat(&self) {
        lock(&self.shared.roll).current.set_heartbeat(unix_now_ns());
    }

    /// Keeps the segment that holds `from`, and every later one, from being pruned by
    /// [`maintain`](Self::maintain), whatever the retention policy's age and size limits say
    /// (compressing them is fine: tailers read `.gz` segments). The daemon sets it to where its
    /// last checkpoint's replay starts, so that recovery always finds what it replays.
    ///
    /// A floor can keep the journal above `max_total_bytes`: [`RetentionReport::kept_for_floor`]
    /// and [`RetentionReport::size_limit_exceeded`] say so, for an alert. Setting it again
    /// replaces it (a lower floor protects nothing already pruned).
    pub fn set_retention_floor(&self, from: Position) {
        let (index, _) = from.split(self.shared.segment_size);
        self.shared.retention_floor.store(index, Ordering::Relaxed);
    }

    /// Removes the retention floor: `maintain` prunes by the policy alone again.
    pub fn clear_retention_floor(&self) {
        self.shared
            .retention_floor
            .store(NO_RETENTION_FLOOR, Ordering::Relaxed);
    }

    /// The index of the oldest segment the retention floor keeps, if one is set.
    pub fn retention_floor(&self) -> Option<u64> {
        let index = self.shared.retention_floor.load(Ordering::Relaxed);
        (index != NO_RETENTION_FLOOR).then_some(index)
    }

    /// Cold-path housekeeping, for a background thread every second or so, in this order:
    /// unmaps the segment retired by the last rollover; seals finished segments; prunes old ones
    /// by the retention policy (never at or after the [retention floor](Self::set_retention_floor);
    /// with an [`ArchiveGate`](crate::ArchiveGate), only what the archive has, up to its hard
    /// limit: the archiver's watermark file is read here, on the caller's cold thread);
    /// compresses sealed ones; and creates the next segment ahead of time (so that a rollover
    /// makes no syscall). Pruning comes first because it frees the room that compression and the
    /// new segment need.
    ///
    /// Every step runs even when an earlier one failed. A failed compression is not an error: it
    /// is listed in [`RetentionReport::compress_failed`], its raw segment is kept, and the next
    /// pass tries again. Any other failure is returned once all steps have run (the failure to
    /// create the next segment first, as appends need it): [`ShmError::NoSpace`] when the
    /// filesystem has no room for it (see [`ShmError::is_no_space`]).
    pub fn maintain(&self) -> Result<RetentionReport> {
        match self.maintain_reporting() {
            (report, None) => Ok(report),
            (_, Some(e)) => Err(e),
        }
    }

    /// [`maintain`](Self::maintain), with what the pass did even when it also failed: a pass
    /// that pruned segments the archive did not have (the hard limit) and then could not create
    /// the next segment (a full filesystem, just when that limit is reached) still reports
    /// them, for the daemon to count and journal.
    pub fn maintain_reporting(&self) -> (RetentionReport, Option<ShmError>) {
        let shared = &*self.shared;
        let (retired, current_index, spare_ready) = {
            let mut roll = lock(&shared.roll);
            let current = roll.current.index();
            let spare_ready = roll
                .spare
                .as_ref()
                .is_some_and(|s| s.index() == current + 1);
            (roll.previous.take(), current, spare_ready)
        };
        drop(retired);
        let floor = shared.retention_floor.load(Ordering::Relaxed);
        // Pruning by size makes room for the segment about to be created, too.
        let to_create = if spare_ready {
            0
        } else {
            shared.segment_size as u64
        };
        let (mut report, retention_error) = retention::maintain(
            &shared.dir,
            current_index,
            &shared.retention,
            unix_now_ns(),
            floor,
            to_create,
        );
        let spare = if spare_ready {
            Ok(false)
        } else {
            self.prepare_spare()
        };
        match (spare, retention_error) {
            (Err(e), _) | (Ok(_), Some(e)) => (report, Some(e)),
            (Ok(created), None) => {
                if created {
                    report.total_bytes += shared.segment_size as u64;
                }
                (report, None)
            }
        }
    }

    /// Creates the segment after the current one, unless a rollover got there first. Returns
    /// whether this call created it.
    fn prepare_spare(&self) -> Result<bool> {
        let shared = &*self.shared;
        let next = {
            let roll = lock(&shared.roll);
            let next = roll.current.index() + 1;
            if roll.spare.as_ref().is_some_and(|s| s.index() == next) {
                return Ok(false);
            }
            next
        };
        // Created (and prefaulted, which can take a while) outside the roll lock, so that
        // appenders rolling over meanwhile are not held up; one that needs this index first
        // creates it itself and `WritableSegment::create` makes both end up with one file.
        let spare = Arc::new(WritableSegment::create(
            &shared.dir,
            next,
            shared.segment_size,
            shared.epoch,
            &shared.calibration,
            shared.now_unix_ns(),
            shared.prefault,
        )?);
        let mut roll = lock(&shared.roll);
        if roll.current.index() + 1 == next {
            roll.spare = Some(spare);
        }
        Ok(true)
    }
}

/// A per-thread handle that appends frames. Not `Clone`: one appender per writer id, each used
/// by one thread at a time. Appending takes one atomic add: no lock, no allocation, no syscall.
/// The rollover to a new segment (once per segment) briefly takes the journal's roll lock; it
/// allocates nothing and makes no syscall when `Journal::maintain` has prepared the next segment.
pub struct Appender {
    shared: Arc<JournalCore>,
    segment: Arc<WritableSegment>,
    writer_id: u16,
    next_sequence: u64,
    clock: quanta::Clock,
    payload_len_max: usize,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("writer_id", &self.writer_id)
            .field("next_sequence", &self.next_sequence)
            .field("segment", &self.segment.index())
            .finish_non_exhaustive()
    }
}

impl Appender {
    pub fn writer_id(&self) -> u16 {
        self.writer_id
    }

    /// The sequence the next frame of this writer will carry.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Appends a frame with a copy of `payload`. Returns the frame's position.
    #[inline]
    pub fn append(&mut self, record_type: RecordType, payload: &[u8]) -> Result<Position> {
        self.append_with(record_type, payload.len(), |buf| {
            buf.copy_from_slice(payload)
        })
    }

    /// Appends a frame of `payload_len` bytes that `fill` writes in place (zero-copy for fixed
    /// records). The frame is stamped with the TSC at the claim.
    ///
    /// When the segment is full, the appender that crossed its end pads it and rolls over to
    /// the next segment, which `Journal::maintain` normally created ahead of time; this takes the
    /// journal's roll lock (uncontended but for other appenders rolling over at the same moment)
    /// and, if no segment was ready, creates one without prefaulting it (syscalls, an allocation,
    /// and the `fallocate` of its space; the appends that follow take its page faults). If there
    /// is no room for it, the append returns [`ShmError::NoSpace`] without writing its frame; a
    /// later append tries the rollover again.
    #[inline]
    pub fn append_with(
        &mut self,
        record_type: RecordType,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<Position> {
        assert!(
            !record_type.is_padding(),
            "record type 0 is the journal's padding"
        );
        if payload_len > self.payload_len_max {
            return Err(ShmError::PayloadTooLarge {
                len: payload_len,
                max: self.payload_len_max,
            });
        }
        let aligned = align_frame(FRAME_HEADER_LEN + payload_len);
        let offset = loop {
            match self.segment.claim(aligned) {
                Claim::Fits(offset) => break offset,
                Claim::Crossed(offset) => {
                    // SAFETY: the claim handed us [offset, end of segment).
                    unsafe {
                        self.segment.write_padding(
                            offset,
                            self.segment.size() - offset,
                            self.writer_id,
                        )
                    };
                    self.roll()?;
                }
                Claim::Full => self.roll()?,
            }
        };
        let tsc = self.clock.raw();
        let sequence = self.next_sequence;
        // SAFETY: `claim` handed us [offset, offset + aligned), which holds this frame.
        unsafe {
            self.segment.write_frame(
                offset,
                FrameStamp {
                    record_type,
                    writer_id: self.writer_id,
                    sequence,
                    tsc,
                },
                payload_len,
                fill,
            )
        };
        self.next_sequence = sequence + 1;
        Ok(Position::new(
            self.segment.index(),
            offset,
            self.shared.segment_size,
        ))
    }

    #[cold]
    #[inline(never)]
    fn roll(&mut self) -> Result<()> {
        let shared = &*self.shared;
        let mut roll = lock(&shared.roll);
        if roll.current.index() == self.segment.index() {
            let next_index = self.segment.index() + 1;
            let next = match roll.spare.take() {
                // The index always matches: `prepare_spare` installs a spare, under this lock,
                // only for the index after the current one, and only this function moves the
                // current one on, taking the spare. The guard is a defence of that invariant.
                Some(spare) if spare.index() == next_index => spare,
                // The writers outran maintain(). Never prefault here: touching a whole segment
                // under the roll lock stalls every writer for as long as it takes (seconds for
                // 1 GiB on the dev VM); page faults spread over the appends cost far less. Its
                // space is still reserved (`fallocate` allocates pages without touching them):
                // a full filesystem makes this append fail, not a later one SIGBUS.
                _ => Arc::new(WritableSegment::create(
                    &shared.dir,
                    next_index,
                    shared.segment_size,
                    shared.epoch,
                    &shared.calibration,
                    shared.now_unix_ns(),
                    false,
                )?),
            };
            let old = std::mem::replace(&mut roll.current, next);
            roll.previous = Some(old);
        }
        self.segment = roll.current.clone();
        drop(roll);
        self.segment
            .set_writer_first_sequence(self.writer_id, self.next_sequence);
        Ok(())
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        lock(&self.shared.next_sequences)[self.writer_id as usize] = self.next_sequence;
        self.shared
            .writers_in_use
            .fetch_and(!(1u64 << self.writer_id), Ordering::AcqRel);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave their state half-changed (every update is a
    // single assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A writer run id: wall-clock nanoseconds mixed with the pid, never zero.
fn new_epoch() -> u64 {
    let mixed = unix_now_ns() ^ ((std::process::id() as u64) << 40);
    mixed.max(1)
}

/// Removes the `.tmp` files of segment creations and compressions that a crash interrupted
/// (safe: we hold the writer lock, so nobody else is creating any).
fn remove_leftover_temporaries(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| ShmError::io(dir, "read_dir", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ShmError::io(dir, "read_dir", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("journal-") && name.ends_with(".tmp") {
            fs::remove_file(entry.path()).map_err(|e| ShmError::io(entry.path(), "remove", e))?;
        }
    }
    Ok(())
}

/// A segment file found in a journal directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub index: u64,
    pub compressed: bool,
    pub path: PathBuf,
}

/// The segment files of a journal, in index order. When both the raw and the compressed file
/// of an index exist (a compression in progress), the raw one is listed.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>> {
    let entries = fs::read_dir(dir).map_err(|e| ShmError::io(dir, "read_dir", e))?;
    let mut found: Vec<SegmentFile> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ShmError::io(dir, "read_dir", e))?;
        let name = entry.file_name();
        let Some((index, compressed)) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        found.push(SegmentFile {
            index,
            compressed,
            path: entry.path(),
        });
    }
    found.sort_by_key(|s| (s.index, s.compressed));
    found.dedup_by_key(|s| s.index);
    Ok(found)
}

/// What a copier of segment files (the archiver) reads from a listed segment's header, checked,
/// without mapping the file or decompressing past the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentFileHeader {
    pub index: u64,
    /// The writer run that created the segment.
    pub epoch: u64,
    pub created_unix_ns: u64,
    /// Sealed: every writer has moved on, nothing more is written to it. A compressed segment
    /// is always sealed (retention compresses sealed segments only).
    pub sealed: bool,
}

/// Reads and checks the header of a listed segment file, raw or compressed.
pub fn read_segment_file_header(file: &SegmentFile) -> Result<SegmentFileHeader> {
    let header = read_segment_header(&file.path, file.compressed)?;
    let info = check_header(&file.path, &header, None)?;
    Ok(SegmentFileHeader {
        index: info.index,
        epoch: le_u64(&header, OFF_EPOCH),
        created_unix_ns: info.created_unix_ns,
        sealed: file.compressed || info.sealed,
    })
}

/// Opens a listed segment for reading, raw or compressed.
pub(crate) fn open_segment_file(file: &SegmentFile) -> Result<SegmentMap> {
    if file.compressed {
        SegmentMap::open_compressed(&file.path)
    } else {
        // A later segment: this one's writers have moved on.
        let later = |name: String| file.path.with_file_name(name).exists();
        let done =
            later(segment_file_name(file.index + 1)) || later(compressed_file_name(file.index + 1));
        SegmentMap::open_read_only(&file.path, done)
    }
}

/// Repairs every unsealed raw segment, then recovers each writer's next sequence.
fn recover(listing: &[SegmentFile]) -> Result<(RecoveryReport, [u64; WRITERS_MAX], usize)> {
    let mut report = RecoveryReport {
        recovered: true,
        ..RecoveryReport::default()
    };
    let mut segment_size = None;
    for file in listing.iter().filter(|f| !f.compressed) {
        let header_file =
            File::open(&file.path).map_err(|e| ShmError::io(&file.path, "open", e))?;
        let info = read_and_check_header(&file.path, &header_file)?;
        let journal_size = *segment_size.get_or_insert(info.size);
        if info.size != journal_size {
            return Err(ShmError::CorruptHeader {
                path: file.path.clone(),
                offset: OFF_SEGMENT_SIZE,
                reason: format!(
                    "segment_size {} differs from the journal's {journal_size}",
                    info.size
                ),
            });
        }
        if info.sealed {
            continue;
        }
        let segment = WritableSegment::open_for_repair(&file.path)?;
        report.segments_scanned += 1;
        let end = repair_segment(&segment, &mut report)?;
        if end > HEADER_LEN {
            report.end_of_previous_run = Some(Position::new(segment.index(), end, segment.size()));
        }
    }
    let segment_size = match segment_size {
        Some(size) => size,
        None => open_segment_file(listing.last().expect("listing is not empty"))?.size(),
    };
    let next_sequences = recover_sequences(listing)?;
    Ok((report, next_sequences, segment_size))
}

/// Makes every frame of a segment committed or padding, through the end, and seals it. Returns
/// the end of its last committed (non-padding) frame.
fn repair_segment(segment: &WritableSegment, report: &mut RecoveryReport) -> Result<usize> {
    let size = segment.size();
    let claimed_tail = segment.claimed_tail().min(size);
    let mut offset = HEADER_LEN;
    let mut last_frame_end = HEADER_LEN;
    loop {
        let (stop, slot) = segment.walk_committed(offset, |at, header| {
            report.frames_committed += 1;
            last_frame_end = at + align_frame(FRAME_HEADER_LEN + header.payload_len);
        })?;
        offset = stop;
        match slot {
            Slot::End => break,
            Slot::Claimed { aligned } => {
                // SAFETY: we hold the writer lock; the writer that claimed this range is dead.
                unsafe { segment.write_padding(offset, aligned, 0) };
                report.frames_cut += 1;
                report.bytes_cut += aligned;
                offset += aligned;
            }
            Slot::Empty => {
                let resume = segment.next_written_offset(offset, claimed_tail);
                let hole_end = resume.unwrap_or(size);
                // SAFETY: as above; the range up to the next written frame (or the end) was
                // claimed by a writer that died before writing anything, or never claimed.
                unsafe { segment.write_padding(offset, hole_end - offset, 0) };
                if resume.is_some() {
                    report.frames_cut += 1;
                    report.bytes_cut += hole_end - offset;
                }
                offset = hole_end;
            }
            Slot::Frame { .. } | Slot::Padding { .. } => unreachable!("walk stops elsewhere"),
        }
    }
    segment.set_tail(size);
    segment.set_sealed();
    Ok(last_frame_end)
}

/// For each writer id, the sequence after the last one it committed, looking from the newest
/// segment back until every id that ever entered a segment is accounted for.
///
/// Ids never used stay unresolved, so every segment's header is read; but only a segment that
/// an unresolved writer entered is opened in full (mapped, or decompressed: 64 MiB each by
/// default) and its frames walked. Usually that is the newest one or two, however many
/// compressed segments retention keeps.
fn recover_sequences(listing: &[SegmentFile]) -> Result<[u64; WRITERS_MAX]> {
    let mut next = [0u64; WRITERS_MAX];
    for file in listing.iter().rev() {
        if next.iter().all(|&n| n != 0) {
            break;
        }
        let header = read_segment_header(&file.path, file.compressed)?;
        let first_sequence = |w: usize| le_u64(&header, OFF_WRITER_FIRST_SEQUENCE + w * 8);
        let entered: Vec<usize> = (0..WRITERS_MAX)
            .filter(|&w| next[w] == 0 && first_sequence(w) != 0)
            .collect();
        if entered.is_empty() {
            continue;
        }
        let segment = open_segment_file(file)?;
        // Every writer seen in this segment is resolved by its scan, with or without a slot.
        let mut found = [0u64; WRITERS_MAX];
        for &w in &entered {
            found[w] = first_sequence(w);
        }
        segment.walk_committed(HEADER_LEN, |_, header| {
            let w = header.writer_id as usize;
            if w < WRITERS_MAX {
                found[w] = found[w].max(header.sequence + 1);
            }
        })?;
        for w in 0..WRITERS_MAX {
            if next[w] == 0 && found[w] != 0 {
                next[w] = found[w];
            }
        }
    }
    for n in &mut next {
        if *n == 0 {
            *n = 1;
        }
    }
    Ok(next)
}
