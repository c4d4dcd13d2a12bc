//! `[journal]`: where the journal lives, its segments and retention, checked against the
//! filesystem that holds it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use levibot_shm::layout::{SEGMENT_SIZE_MAX, SEGMENT_SIZE_MIN};
use levibot_shm::{ArchiveGate, JournalConfig, RetentionPolicy, paths};

use super::host;
use super::reader::{self, Base, Problems, Section};

/// Default `journal.retention.max_total_mib`: the journal lives in RAM, so it is always bounded.
/// Lowered to half the journal's filesystem when that is smaller (never below two segments).
pub const RETENTION_TOTAL_MIB_DEFAULT: u64 = 4096;

/// `[journal]`: (its directory, when valid; the whole config).
pub(super) fn journal(
    p: &mut Problems,
    mut s: Section<'_>,
    base: Base<'_>,
) -> (Option<PathBuf>, Option<JournalConfig>) {
    let dir_key = s.key("dir");
    let dir = s.or(
        p,
        "dir",
        PathBuf::from(paths::DEFAULT_DIR),
        reader::path(base.dir),
    );
    // Its filesystem is inspected: only where the options allow (the default too).
    let checked_dir = dir.clone().filter(|d| match base.confined(d) {
        Ok(()) => true,
        Err(problem) => {
            p.push(dir_key.clone(), problem);
            false
        }
    });
    let mib_max = (SEGMENT_SIZE_MAX >> 20) as i64;
    let mib_min = SEGMENT_SIZE_MIN.div_ceil(1 << 20) as i64;
    let segment_key = s.key("segment_size_mib");
    let segment_mib = s.or(p, "segment_size_mib", 64, |v| {
        let mib = reader::int(mib_min..=mib_max)(v)?;
        if (mib as u64).is_power_of_two() {
            Ok(mib)
        } else {
            Err(format!(
                "{mib} is not a power of two (in {mib_min}..={mib_max})"
            ))
        }
    });
    let prefault = s.or(p, "prefault", true, reader::boolean);
    let retention = s.table(p, "retention").and_then(|mut r| {
        let compress = r.or(p, "compress", true, reader::boolean);
        let raw_segments_kept = r.or(p, "raw_segments_kept", 2, reader::int(0..=1024));
        let max_age_hours = r.optional(p, "max_age_hours", reader::int(1..=87_600));
        let total_key = r.key("max_total_mib");
        let max_total_mib = r.optional(p, "max_total_mib", reader::int(1..=1 << 30));
        // Retention that waits for levibot-archiver: its watermark file, read (never
        // written, never inspected here: missing means nothing is archived) by the
        // maintenance thread; and the hard limit past which unarchived segments go anyway.
        let watermark = r.optional(p, "archive_watermark", reader::path(base.dir));
        let hard_key = r.key("hard_max_total_mib");
        let hard_mib = r.optional(p, "hard_max_total_mib", reader::int(1..=1 << 30));
        r.finish(p);
        let (watermark, hard_mib) = (watermark?, hard_mib?);
        if watermark.is_none() && hard_mib.is_some() {
            p.push(
                &hard_key,
                "only with archive_watermark: without an archive to wait for, max_total_mib \
                 is the limit",
            );
            return None;
        }
        let max_total_mib = match (max_total_mib?, segment_mib) {
            (Some(total), Some(segment)) if total < 2 * segment => {
                p.push(
                    &total_key,
                    format!(
                        "{total} MiB is less than two segments ({segment} MiB each): retention \
                         would delete every finished segment"
                    ),
                );
                return None;
            }
            (total, _) => total.map(|t| t as u64),
        };
        let room = journal_room(
            p,
            [&dir_key, &segment_key, &total_key],
            checked_dir.as_deref()?,
            (segment_mib? as u64) << 20,
            max_total_mib.map(|mib| mib << 20),
        )?;
        let archive = match watermark {
            None => None,
            Some(watermark) => Some(ArchiveGate {
                watermark,
                hard_max_total_bytes: hard_limit(
                    p,
                    &hard_key,
                    room,
                    hard_mib.map(|mib| (mib as u64) << 20),
                )?,
            }),
        };
        Some(RetentionPolicy {
            compress: compress?,
            raw_segments_kept: raw_segments_kept? as usize,
            max_age: max_age_hours?.map(|h| Duration::from_secs(h as u64 * 3600)),
            max_total_bytes: Some(room.max_total),
            archive,
        })
    });
    s.finish(p);
    let config = (|| {
        Some(JournalConfig {
            dir: dir.clone()?,
            segment_size: (segment_mib? as usize) << 20,
            prefault: prefault?,
            retention: retention?,
        })
    })();
    (dir, config)
}

/// What the journal's filesystem leaves for segments.
#[derive(Clone, Copy)]
struct Room {
    /// `max_total_bytes`: as written, or the default for this filesystem.
    max_total: u64,
    /// The most segments may take there: its size less the next segment (created before
    /// retention deletes the oldest) and the counters file. `None`: a filesystem that reports
    /// no size (ramfs).
    fits: Option<u64>,
}

/// Default `hard_max_total_mib`: twice `max_total_mib`, as far as the filesystem holds it.
/// The hard limit is where retention stops waiting for the archive: between the two, segments
/// the archiver has not copied pile up while the store is down.
fn hard_limit(p: &mut Problems, hard_key: &str, room: Room, hard: Option<u64>) -> Option<u64> {
    const MIB: u64 = 1 << 20;
    let fits = room.fits.unwrap_or(u64::MAX);
    match hard {
        Some(hard) if hard < room.max_total => {
            p.push(
                hard_key,
                format!(
                    "{} MiB is below max_total_mib ({} MiB): retention would prune segments the \
                     archive does not have before the ones it has",
                    hard / MIB,
                    room.max_total / MIB
                ),
            );
            None
        }
        Some(hard) if hard > fits => {
            p.push(
                hard_key,
                format!(
                    "{} MiB does not fit in the journal's filesystem: with the next segment and \
                     the counters file, at most {} MiB fits",
                    hard / MIB,
                    fits / MIB
                ),
            );
            None
        }
        Some(hard) => Some(hard),
        // In whole MiB, as the limit would be written.
        None => Some(
            room.max_total
                .saturating_mul(2)
                .min(fits / MIB * MIB)
                .max(room.max_total),
        ),
    }
}

/// Checks the journal against the filesystem of `dir`, and returns its [`Room`]. At any moment
/// the journal holds up to `max_total` bytes of segments plus the next segment, created before
/// retention deletes the oldest, plus the counters file: that must fit, or the filesystem
/// fills before retention frees room.
fn journal_room(
    p: &mut Problems,
    [dir_key, segment_key, total_key]: [&str; 3],
    dir: &Path,
    segment: u64,
    max_total: Option<u64>,
) -> Option<Room> {
    const MIB: u64 = 1 << 20;
    let default = RETENTION_TOTAL_MIB_DEFAULT * MIB;
    let fs = match host::filesystem_of(dir) {
        Ok(fs) => fs,
        Err(e) => {
            p.push(dir_key, format!("cannot inspect its filesystem: {e}"));
            return None;
        }
    };
    // A filesystem that reports no size (ramfs) cannot be checked.
    let Some(size) = fs.size else {
        return Some(Room {
            max_total: max_total.unwrap_or(default),
            fits: None,
        });
    };
    let of = format!("the filesystem of {} ({})", dir.display(), fs.describe());
    let counters = host::COUNTERS_FILE_LEN;
    let least = 3 * segment + counters;
    if size < least {
        p.push(
            segment_key,
            format!(
                "{} MiB segments do not fit in {of}: the journal needs three at once (the one \
                 being written, the next one created ahead, the oldest until retention deletes \
                 it) and the counters file, {} MiB in all; use smaller segments or a larger \
                 filesystem",
                segment / MIB,
                least.div_ceil(MIB)
            ),
        );
        return None;
    }
    let room = size - segment - counters;
    match max_total {
        Some(total) if total > room => {
            p.push(
                total_key,
                format!(
                    "{} MiB does not fit in {of}: retention deletes old segments only once they \
                     take more than this, after the next segment ({} MiB) is created, and the \
                     counters file is there too, so the filesystem would fill before retention \
                     frees room; at most {} MiB fits",
                    total / MIB,
                    segment / MIB,
                    room / MIB
                ),
            );
            None
        }
        Some(total) => Some(Room {
            max_total: total,
            fits: Some(room),
        }),
        // Half the filesystem, if that is less than the default, but two segments at least
        // (which fit: checked above).
        None => Some(Room {
            max_total: default.min(size / 2 / MIB * MIB).min(room).max(2 * segment),
            fits: Some(room),
        }),
    }
}
