//! Sealing, compressing and pruning old segments. Cold path only: run from
//! [`Journal::maintain`](crate::Journal::maintain) on a background thread.
//!
//! With an [`ArchiveGate`], pruning waits for the archive: a segment the archiver's
//! [watermark](crate::watermark) does not cover is held, whatever its age and the size limit,
//! until the journal passes the gate's hard limit; then the oldest are pruned anyway and the
//! report names them ([`RetentionReport::pruned_unarchived`]).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Result, ShmError};
use crate::journal::{SegmentFile, list_segments, read_segment_file_header};
use crate::layout::*;
use crate::segment::{Slot, TempFile, WritableSegment, read_and_check_header};
use crate::watermark::ArchiveWatermark;

/// Which old segments to compress and which to delete. Only sealed segments older than the
/// current one are touched; the segment being written is never compressed or pruned, nor is any
/// segment at or after the journal's retention floor pruned
/// ([`Journal::set_retention_floor`](crate::Journal::set_retention_floor)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Gzip sealed segments (to `journal-N.lvj.gz`) beyond the newest `raw_segments_kept`.
    pub compress: bool,
    /// Sealed segments kept uncompressed (mapped directly by tailers that lag a little).
    pub raw_segments_kept: usize,
    /// Delete segments created longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while all segment files together take more bytes than this.
    /// Counted before this pass compresses anything (pruning runs first, to make room for the
    /// compression), so a pass may delete a little more than the compressed sizes would need.
    pub max_total_bytes: Option<u64>,
    /// Wait for the archive: prune only what the archiver has copied, up to a hard limit.
    /// `None`: prune by age and size alone.
    pub archive: Option<ArchiveGate>,
}

/// Retention that waits for the archive. A sealed segment that age or `max_total_bytes` would
/// prune is kept (`held_for_archive`) while the archiver's watermark does not cover it; only
/// past `hard_max_total_bytes` are such segments pruned, oldest first, each reported in
/// `pruned_unarchived`. A watermark file that is missing or unreadable covers nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveGate {
    /// The archiver's watermark file, read (never written) once per pass
    /// (`<archiver state dir>/archived.watermark`, [`crate::watermark`]).
    pub watermark: PathBuf,
    /// All segment files together (and the next one) may take this many bytes before
    /// segments the archive has not copied are pruned. At least `max_total_bytes`.
    pub hard_max_total_bytes: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            compress: true,
            raw_segments_kept: 2,
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_total_bytes: Some(4 << 30),
            archive: None,
        }
    }
}

impl RetentionPolicy {
    /// Keeps everything, uncompressed.
    pub fn keep_all() -> Self {
        RetentionPolicy {
            compress: false,
            raw_segments_kept: 0,
            max_age: None,
            max_total_bytes: None,
            archive: None,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.max_total_bytes == Some(0) {
            return Err(ShmError::Config {
                key: "retention.max_total_bytes",
                reason: "0 would delete every finished segment; leave it unset to keep all".into(),
            });
        }
        if let Some(gate) = &self.archive {
            if gate.hard_max_total_bytes == 0 {
                return Err(ShmError::Config {
                    key: "retention.archive.hard_max_total_bytes",
                    reason: "0 would delete every finished segment, archived or not".into(),
                });
            }
            if let Some(soft) = self
                .max_total_bytes
                .filter(|&m| m > gate.hard_max_total_bytes)
            {
                return Err(ShmError::Config {
                    key: "retention.archive.hard_max_total_bytes",
                    reason: format!(
                        "{} is below max_total_bytes ({soft}): the hard limit must be the higher",
                        gate.hard_max_total_bytes
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A segment pruned before the archive had it (the hard limit forced it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnarchivedPrune {
    pub index: u64,
    /// Its writer run.
    pub epoch: u64,
    pub bytes: u64,
}

/// What one maintenance pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub sealed: Vec<u64>,
    pub compressed: Vec<u64>,
    pub pruned: Vec<u64>,
    /// Segments the policy would have pruned (too old, or over `max_total_bytes`) that the
    /// journal's retention floor kept, because recovery may replay them.
    pub kept_for_floor: Vec<u64>,
    /// Segments the policy would have pruned that the archive does not have yet: kept.
    pub held_for_archive: Vec<u64>,
    /// Bytes of the `held_for_archive` segment files.
    pub held_for_archive_bytes: u64,
    /// Segments the archive did not have, pruned because the journal was over the
    /// [`ArchiveGate`]'s hard limit (also listed in `pruned`), oldest first.
    pub pruned_unarchived: Vec<UnarchivedPrune>,
    /// Why the archive watermark could not be read this pass (missing, unreadable, malformed):
    /// the pass took nothing as archived.
    pub archive_watermark_error: Option<String>,
    /// Compressions that failed this pass. Their raw segments are kept (and readable); the next
    /// pass tries again. After a failure for lack of room, the pass compresses nothing more.
    pub compress_failed: Vec<CompressFailure>,
    /// Whether all segment files (the next one, about to be created, included) still take more
    /// than `max_total_bytes` after the pass: kept for the retention floor, behind a segment not
    /// sealed yet, or a limit below what the current and next segments take.
    pub size_limit_exceeded: bool,
    /// Bytes of all segment files after the pass.
    pub total_bytes: u64,
}

/// A segment that could not be compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressFailure {
    pub index: u64,
    /// The filesystem was full (`ENOSPC`, `EDQUOT`).
    pub no_space: bool,
    /// The error, naming the file.
    pub error: String,
}

/// One retention pass over the segments before `current_index`: seal, prune, compress, in that
/// order (pruning frees the room compression needs). Never prunes a segment at or after
/// `floor_index`. `bytes_to_create` (the next segment, created right after) counts towards the
/// size limit. Every step runs even if an earlier one failed; the first error is returned beside
/// the report. Compression failures are in the report only.
pub(crate) fn maintain(
    dir: &Path,
    current_index: u64,
    policy: &RetentionPolicy,
    now_unix_ns: u64,
    floor_index: u64,
    bytes_to_create: u64,
) -> (RetentionReport, Option<ShmError>) {
    let mut report = RetentionReport::default();
    let mut first_error = None;
    let old: Vec<SegmentFile> = match list_segments(dir) {
        Ok(listing) => listing
            .into_iter()
            .filter(|s| s.index < current_index)
            .collect(),
        Err(e) => return (report, Some(e)),
    };

    let mut sealed = Vec::with_capacity(old.len());
    for file in &old {
        let is_sealed = file.compressed || {
            match seal_if_finished(file, &mut report) {
                Ok(is_sealed) => is_sealed,
                Err(e) => {
                    first_error.get_or_insert(e);
                    false
                }
            }
        };
        if is_sealed {
            sealed.push(file.index);
        }
    }

    // Read once per pass, on this (cold) thread; unreadable covers nothing.
    let watermark = policy.archive.as_ref().map(|gate| {
        ArchiveWatermark::read(&gate.watermark).unwrap_or_else(|e| {
            report.archive_watermark_error = Some(e.to_string());
            ArchiveWatermark::new()
        })
    });
    let prune = Prune {
        dir,
        current_index,
        sealed: &sealed,
        policy,
        now_unix_ns,
        floor_index,
        bytes_to_create,
        watermark: watermark.as_ref(),
    };
    if let Err(e) = prune.run(&mut report) {
        first_error.get_or_insert(e);
    }

    if policy.compress {
        let raw_sealed: Vec<&SegmentFile> = old
            .iter()
            .filter(|s| !s.compressed && sealed.contains(&s.index))
            .filter(|s| !report.pruned.contains(&s.index))
            .collect();
        let to_compress = raw_sealed.len().saturating_sub(policy.raw_segments_kept);
        for file in &raw_sealed[..to_compress] {
            match compress_segment(&file.path, file.index) {
                Ok(()) => report.compressed.push(file.index),
                Err(e) => {
                    let no_space = e.is_no_space();
                    report.compress_failed.push(CompressFailure {
                        index: file.index,
                        no_space,
                        error: e.to_string(),
                    });
                    if no_space {
                        break;
                    }
                }
            }
        }
    }

    match total_bytes(dir) {
        Ok(total) => {
            report.total_bytes = total;
            report.size_limit_exceeded = policy
                .max_total_bytes
                .is_some_and(|max| total + bytes_to_create > max);
        }
        Err(e) => {
            first_error.get_or_insert(e);
        }
    }
    (report, first_error)
}

/// The pruning step of a pass.
struct Prune<'a> {
    dir: &'a Path,
    current_index: u64,
    sealed: &'a [u64],
    policy: &'a RetentionPolicy,
    now_unix_ns: u64,
    floor_index: u64,
    bytes_to_create: u64,
    /// What the archive has, when the policy waits for it.
    watermark: Option<&'a ArchiveWatermark>,
}

impl Prune<'_> {
    /// Deletes the oldest segments, by age, then by total size, stopping at the first segment
    /// that is not sealed, is in use, or is within every limit. Only sealed segments are
    /// candidates; those at or after the floor are listed in `kept_for_floor` instead, and,
    /// when the policy waits for the archive, those it does not have in `held_for_archive`.
    /// Then, while the journal is still over the archive gate's hard limit, the oldest held
    /// segments are pruned anyway (`pruned_unarchived`): archived segments go first, wherever
    /// they are, so that the hard limit loses as little as it can.
    fn run(&self, report: &mut RetentionReport) -> Result<()> {
        let policy = self.policy;
        if policy.max_age.is_none() && policy.max_total_bytes.is_none() && policy.archive.is_none()
        {
            return Ok(());
        }
        let hard_max = policy.archive.as_ref().map(|g| g.hard_max_total_bytes);
        let files = list_segments(self.dir)?;
        let mut sizes = Vec::with_capacity(files.len());
        for f in &files {
            sizes.push(file_size(&f.path)?);
        }
        let mut total = sizes.iter().sum::<u64>() + self.bytes_to_create;
        // Segments the archive does not have that the limits would prune, oldest first, with
        // whether age or the soft limit would (else only the hard limit, which pass 2 meets).
        let mut held: Vec<(&SegmentFile, u64, u64, bool)> = Vec::new();
        for (file, size) in files.iter().zip(sizes) {
            if file.index >= self.current_index || !self.sealed.contains(&file.index) {
                break;
            }
            let too_old = match policy.max_age {
                Some(max_age) => {
                    let created = created_unix_ns(file)?;
                    self.now_unix_ns.saturating_sub(created) > max_age.as_nanos() as u64
                }
                None => false,
            };
            let over_soft = policy.max_total_bytes.is_some_and(|max| total > max);
            let over_hard = hard_max.is_some_and(|max| total > max);
            if !(too_old || over_soft || over_hard) {
                break;
            }
            if file.index >= self.floor_index {
                report.kept_for_floor.push(file.index);
                continue;
            }
            if let Some(watermark) = self.watermark {
                // A header that cannot be read: not archived (the archiver cannot read it
                // either), so held, and pruned first at the hard limit; never a reason to stop
                // pruning altogether and let the filesystem fill. Epoch 0 is no writer run.
                let epoch = read_segment_file_header(file).map_or(0, |h| h.epoch);
                if !watermark.covers(epoch, file.index) {
                    held.push((file, size, epoch, too_old || over_soft));
                    continue;
                }
            }
            remove(file)?;
            report.pruned.push(file.index);
            total -= size;
        }
        // Over the hard limit with nothing archived left to prune: the oldest held go.
        let mut forced = 0;
        for &(file, size, epoch, _) in &held {
            if hard_max.is_none_or(|max| total <= max) {
                break;
            }
            remove(file)?;
            forced += 1;
            report.pruned.push(file.index);
            report.pruned_unarchived.push(UnarchivedPrune {
                index: file.index,
                epoch,
                bytes: size,
            });
            total -= size;
        }
        report.pruned.sort_unstable();
        // Those left are held if age or the soft limit would prune them; the hard limit is met.
        for &(file, size, _, _) in held[forced..].iter().filter(|h| h.3) {
            report.held_for_archive.push(file.index);
            report.held_for_archive_bytes += size;
        }
        Ok(())
    }
}

fn remove(file: &SegmentFile) -> Result<()> {
    fs::remove_file(&file.path).map_err(|e| ShmError::io(&file.path, "remove", e))
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .map_err(|e| ShmError::io(path, "stat", e))?
        .len())
}

/// Bytes of all segment files of `dir`.
fn total_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for file in list_segments(dir)? {
        total += file_size(&file.path)?;
    }
    Ok(total)
}

/// Seals a raw segment whose frames are all committed through its end. Returns whether it is
/// sealed now.
fn seal_if_finished(file: &SegmentFile, report: &mut RetentionReport) -> Result<bool> {
    let f = File::open(&file.path).map_err(|e| ShmError::io(&file.path, "open", e))?;
    if read_and_check_header(&file.path, &f)?.sealed {
        return Ok(true);
    }
    let segment = WritableSegment::open(&file.path)?;
    let (_, stop) = segment.walk_committed(HEADER_LEN, |_, _| {})?;
    if stop != Slot::End {
        return Ok(false);
    }
    segment.set_sealed();
    report.sealed.push(file.index);
    Ok(true)
}

/// When a segment was created: from its header if raw, from the file's mtime (set to the same
/// instant at compression) if compressed.
fn created_unix_ns(file: &SegmentFile) -> Result<u64> {
    let f = File::open(&file.path).map_err(|e| ShmError::io(&file.path, "open", e))?;
    if file.compressed {
        let modified = f
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| ShmError::io(&file.path, "stat", e))?;
        Ok(modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64))
    } else {
        Ok(read_and_check_header(&file.path, &f)?.created_unix_ns)
    }
}

/// Gzips a sealed segment: writes `.lvj.gz.tmp`, syncs it, renames it to `.lvj.gz`, then removes
/// the raw file. At every instant one of the two complete files exists for a tailer to open. On
/// an error (a full filesystem, say) the `.tmp` is removed and the raw file stays.
fn compress_segment(raw: &Path, index: u64) -> Result<()> {
    let dir = raw.parent().unwrap_or(Path::new("."));
    let gz = dir.join(compressed_file_name(index));
    let tmp = TempFile::new(dir.join(format!("{}.tmp", compressed_file_name(index))));
    let source = File::open(raw).map_err(|e| ShmError::io(raw, "open", e))?;
    let created = read_and_check_header(raw, &source)?.created_unix_ns;
    let out = File::create(&tmp.path).map_err(|e| ShmError::io(&tmp.path, "create", e))?;
    let mut encoder =
        flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
    io::copy(&mut BufReader::new(source), &mut encoder)
        .map_err(|e| ShmError::io(&tmp.path, "gzip", e))?;
    let out = encoder
        .finish()
        .and_then(|mut w| {
            w.flush()?;
            w.into_inner().map_err(|e| e.into_error())
        })
        .map_err(|e| ShmError::io(&tmp.path, "gzip", e))?;
    out.set_modified(UNIX_EPOCH + Duration::from_nanos(created))
        .map_err(|e| ShmError::io(&tmp.path, "set mtime", e))?;
    out.sync_all()
        .map_err(|e| ShmError::io(&tmp.path, "fsync", e))?;
    fs::rename(&tmp.path, &gz).map_err(|e| ShmError::io(&gz, "rename", e))?;
    tmp.keep();
    fs::remove_file(raw).map_err(|e| ShmError::io(raw, "remove", e))?;
    Ok(())
}
