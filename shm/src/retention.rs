//! Sealing, compressing and pruning old segments. Cold path only: run from
//! [`Journal::maintain`](crate::Journal::maintain) on a background thread.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Result, ShmError};
use crate::journal::{SegmentFile, list_segments};
use crate::layout::*;
use crate::segment::{Slot, WritableSegment, read_and_check_header};

/// Which old segments to compress and which to delete. Only sealed segments older than the
/// current one are touched; the segment being written is never compressed or pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Gzip sealed segments (to `journal-N.lvj.gz`) beyond the newest `raw_segments_kept`.
    pub compress: bool,
    /// Sealed segments kept uncompressed (mapped directly by tailers that lag a little).
    pub raw_segments_kept: usize,
    /// Delete segments created longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while all segment files together take more bytes than this.
    pub max_total_bytes: Option<u64>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            compress: true,
            raw_segments_kept: 2,
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_total_bytes: Some(4 << 30),
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
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.max_total_bytes == Some(0) {
            return Err(ShmError::Config {
                key: "retention.max_total_bytes",
                reason: "0 would delete every finished segment; leave it unset to keep all".into(),
            });
        }
        Ok(())
    }
}

/// What one maintenance pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub sealed: Vec<u64>,
    pub compressed: Vec<u64>,
    pub pruned: Vec<u64>,
    /// Bytes of all segment files after the pass.
    pub total_bytes: u64,
}

pub(crate) fn maintain(
    dir: &Path,
    current_index: u64,
    policy: &RetentionPolicy,
    now_unix_ns: u64,
) -> Result<RetentionReport> {
    let mut report = RetentionReport::default();
    let old: Vec<SegmentFile> = list_segments(dir)?
        .into_iter()
        .filter(|s| s.index < current_index)
        .collect();

    let mut sealed = Vec::with_capacity(old.len());
    for file in &old {
        if file.compressed || seal_if_finished(file, &mut report)? {
            sealed.push(file.clone());
        }
    }

    if policy.compress {
        let raw_sealed: Vec<&SegmentFile> = sealed.iter().filter(|s| !s.compressed).collect();
        let to_compress = raw_sealed.len().saturating_sub(policy.raw_segments_kept);
        for file in &raw_sealed[..to_compress] {
            compress_segment(&file.path, file.index)?;
            report.compressed.push(file.index);
        }
    }

    // Prune oldest first, by age, then by total size; only sealed segments are candidates.
    let files = list_segments(dir)?;
    let mut sizes = Vec::with_capacity(files.len());
    for f in &files {
        sizes.push(
            fs::metadata(&f.path)
                .map_err(|e| ShmError::io(&f.path, "stat", e))?
                .len(),
        );
    }
    let mut total: u64 = sizes.iter().sum();
    let sealed_indexes: Vec<u64> = sealed.iter().map(|s| s.index).collect();
    let mut i = 0;
    while i < files.len() {
        let file = &files[i];
        if file.index >= current_index || !sealed_indexes.contains(&file.index) {
            break;
        }
        let too_old = match policy.max_age {
            Some(max_age) => {
                let created = created_unix_ns(file)?;
                now_unix_ns.saturating_sub(created) > max_age.as_nanos() as u64
            }
            None => false,
        };
        let too_big = policy.max_total_bytes.is_some_and(|max| total > max);
        if !(too_old || too_big) {
            break;
        }
        fs::remove_file(&file.path).map_err(|e| ShmError::io(&file.path, "remove", e))?;
        report.pruned.push(file.index);
        total -= sizes[i];
        i += 1;
    }
    report.total_bytes = total;
    Ok(report)
}

/// Seals a raw segment whose frames are all committed through its end. Returns whether it is
/// sealed now.
fn seal_if_finished(file: &SegmentFile, report: &mut RetentionReport) -> Result<bool> {
    let f = File::open(&file.path).map_err(|e| ShmError::io(&file.path, "open", e))?;
    if read_and_check_header(&file.path, &f)?.sealed {
        return Ok(true);
    }
    let segment = WritableSegment::open(&file.path)?;
    if segment.is_sealed() {
        return Ok(true);
    }
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
/// the raw file. At every instant one of the two complete files exists for a tailer to open.
fn compress_segment(raw: &Path, index: u64) -> Result<()> {
    let dir = raw.parent().unwrap_or(Path::new("."));
    let gz = dir.join(compressed_file_name(index));
    let tmp = dir.join(format!("{}.tmp", compressed_file_name(index)));
    let source = File::open(raw).map_err(|e| ShmError::io(raw, "open", e))?;
    let created = read_and_check_header(raw, &source)?.created_unix_ns;
    let out = File::create(&tmp).map_err(|e| ShmError::io(&tmp, "create", e))?;
    let mut encoder =
        flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
    io::copy(&mut BufReader::new(source), &mut encoder)
        .map_err(|e| ShmError::io(&tmp, "gzip", e))?;
    let out = encoder
        .finish()
        .and_then(|mut w| {
            w.flush()?;
            w.into_inner().map_err(|e| e.into_error())
        })
        .map_err(|e| ShmError::io(&tmp, "gzip", e))?;
    out.set_modified(UNIX_EPOCH + Duration::from_nanos(created))
        .map_err(|e| ShmError::io(&tmp, "set mtime", e))?;
    out.sync_all().map_err(|e| ShmError::io(&tmp, "fsync", e))?;
    fs::rename(&tmp, &gz).map_err(|e| ShmError::io(&gz, "rename", e))?;
    fs::remove_file(raw).map_err(|e| ShmError::io(raw, "remove", e))?;
    Ok(())
}
