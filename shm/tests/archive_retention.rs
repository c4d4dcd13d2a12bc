//! Retention that waits for the archive: what the archiver's watermark covers is pruned, what
//! it does not is held, and only the gate's hard limit prunes a segment the archive does not
//! have, oldest first, each one reported. Sizes are whole segments (no compression), so every
//! expectation below is counted by hand: the files before the pass, plus the next segment the
//! pass creates.

use std::path::{Path, PathBuf};

use crate::common::*;
use levibot_shm::layout::compressed_file_name;
use levibot_shm::watermark::WATERMARK_FILE_NAME;
use levibot_shm::{
    ArchiveGate, ArchiveWatermark, Journal, JournalConfig, RetentionPolicy, UnarchivedPrune,
    list_segments,
};

const SEG: u64 = SMALL_SEGMENT_SIZE as u64;

/// A config whose retention keeps `soft` segments' bytes and waits for the archive (the
/// watermark in `state`) up to `hard` segments' bytes.
fn gated_config(dir: &Path, state: &Path, soft: u64, hard: u64) -> JournalConfig {
    let mut config = small_config(dir);
    config.retention = RetentionPolicy {
        compress: false,
        raw_segments_kept: 0,
        max_age: None,
        max_total_bytes: Some(soft * SEG),
        archive: Some(ArchiveGate {
            watermark: state.join(WATERMARK_FILE_NAME),
            hard_max_total_bytes: hard * SEG,
        }),
    };
    config
}

/// A scratch dir with the archiver's state dir and the journal's in it.
fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = temp_dir();
    let (state, journal) = (dir.path().join("archiver"), dir.path().join("journal"));
    (dir, state, journal)
}

/// Writes the archiver's watermark file with these (epoch, index) marks.
fn write_watermark(state: &Path, marks: &[(u64, u64)]) -> PathBuf {
    let mut mark = ArchiveWatermark::new();
    for &(epoch, index) in marks {
        mark.set(epoch, index);
    }
    std::fs::create_dir_all(state).unwrap();
    let path = state.join(WATERMARK_FILE_NAME);
    std::fs::write(&path, mark.to_text()).unwrap();
    path
}

fn on_disk(dir: &Path) -> Vec<u64> {
    list_segments(dir)
        .unwrap()
        .iter()
        .map(|s| s.index)
        .collect()
}

#[test]
fn archived_segments_are_pruned_and_the_others_held() {
    let (_dir, state, journal_dir) = dirs();
    let journal = Journal::open(&gated_config(&journal_dir, &state, 3, 100)).unwrap();
    append_until_segment(&mut journal.appender(0).unwrap(), 6);
    write_watermark(&state, &[(journal.epoch(), 2)]);

    // 0..=6 on disk and the next one to create: 8 segments, over the 3 allowed.
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0, 1, 2], "{report:?}");
    assert_eq!(report.held_for_archive, [3, 4, 5], "{report:?}");
    assert_eq!(report.held_for_archive_bytes, 3 * SEG, "{report:?}");
    assert!(report.pruned_unarchived.is_empty(), "{report:?}");
    assert_eq!(report.archive_watermark_error, None);
    assert!(
        report.size_limit_exceeded,
        "held past the soft limit: {report:?}"
    );
    assert_eq!(on_disk(&journal_dir), [3, 4, 5, 6, 7]);

    // The archive catches up: what it has now goes, down to the soft limit.
    write_watermark(&state, &[(journal.epoch(), 5)]);
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [3, 4], "{report:?}");
    assert!(report.held_for_archive.is_empty(), "{report:?}");
    assert_eq!(on_disk(&journal_dir), [5, 6, 7]);
}

#[test]
fn a_missing_or_unreadable_watermark_covers_nothing() {
    let (_dir, state, journal_dir) = dirs();
    let journal = Journal::open(&gated_config(&journal_dir, &state, 2, 100)).unwrap();
    append_until_segment(&mut journal.appender(0).unwrap(), 4);

    let report = journal.maintain().unwrap();
    assert!(report.pruned.is_empty(), "{report:?}");
    assert_eq!(report.held_for_archive, [0, 1, 2, 3], "{report:?}");
    let error = report
        .archive_watermark_error
        .expect("the missing file is reported");
    assert!(error.contains(WATERMARK_FILE_NAME), "{error}");

    // Malformed (a mark for every epoch would be "everything"): still nothing.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join(WATERMARK_FILE_NAME), "all of it\n").unwrap();
    let report = journal.maintain().unwrap();
    assert!(report.pruned.is_empty(), "{report:?}");
    assert!(
        report
            .archive_watermark_error
            .is_some_and(|e| e.contains("line 1")),
        "names the line"
    );
    // A mark for another writer run covers none of this run's segments.
    write_watermark(&state, &[(journal.epoch() + 1, 100)]);
    let report = journal.maintain().unwrap();
    assert!(report.pruned.is_empty(), "{report:?}");
    assert_eq!(report.archive_watermark_error, None);
    assert_eq!(on_disk(&journal_dir), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn the_hard_limit_prunes_the_oldest_unarchived_segments_and_names_each() {
    let (_dir, state, journal_dir) = dirs();
    let journal = Journal::open(&gated_config(&journal_dir, &state, 2, 5)).unwrap();
    append_until_segment(&mut journal.appender(0).unwrap(), 6);
    write_watermark(&state, &[(journal.epoch(), 1)]);

    // 8 segments (0..=6 and the next): 0 and 1 are archived and go (6 left); 2..=5 are not,
    // and 6 > 5 forces the oldest of them, 2, which brings it to 5.
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0, 1, 2], "{report:?}");
    assert_eq!(
        report.pruned_unarchived,
        [UnarchivedPrune {
            index: 2,
            epoch: journal.epoch(),
            bytes: SEG
        }],
        "{report:?}"
    );
    assert_eq!(report.held_for_archive, [3, 4, 5], "{report:?}");
    assert_eq!(on_disk(&journal_dir), [3, 4, 5, 6, 7]);

    // Two more segments and no archive: the two oldest go, nothing newer.
    append_until_segment(&mut journal.appender(1).unwrap(), 9);
    std::fs::remove_file(state.join(WATERMARK_FILE_NAME)).unwrap();
    let report = journal.maintain().unwrap();
    let forced: Vec<u64> = report.pruned_unarchived.iter().map(|p| p.index).collect();
    // 3..=9 on disk and the next: 8, over 5 by 3.
    assert_eq!(forced, [3, 4, 5], "{report:?}");
    assert_eq!(report.pruned, forced);
    assert_eq!(report.held_for_archive, [6, 7, 8], "{report:?}");
    assert_eq!(on_disk(&journal_dir), [6, 7, 8, 9, 10]);
}

#[test]
fn the_watermark_is_per_writer_run_and_covers_an_older_run_s_segments() {
    let (_dir, state, journal_dir) = dirs();
    let config = gated_config(&journal_dir, &state, 2, 100);
    // The first run writes segments 0..=3; the second (another epoch) starts at 4.
    let first = Journal::open(&config).unwrap();
    let first_epoch = first.epoch();
    append_until_segment(&mut first.appender(0).unwrap(), 3);
    drop(first);
    let journal = Journal::open(&config).unwrap();
    assert_ne!(journal.epoch(), first_epoch);
    assert_eq!(journal.recovery().first_segment, 4);
    append_until_segment(&mut journal.appender(0).unwrap(), 8);

    // The first run archived up to 1; the second up to 6. 2 and 3 are the first run's, not
    // covered by the second run's higher mark; 7 is sealed and past the second run's mark.
    write_watermark(&state, &[(first_epoch, 1), (journal.epoch(), 6)]);
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0, 1, 4, 5, 6], "{report:?}");
    assert_eq!(report.held_for_archive, [2, 3, 7], "{report:?}");
    assert_eq!(on_disk(&journal_dir), [2, 3, 7, 8, 9]);

    // The older run archived at last: its segments go too.
    write_watermark(&state, &[(first_epoch, 3), (journal.epoch(), 6)]);
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [2, 3], "{report:?}");
    assert_eq!(report.held_for_archive, [7], "{report:?}");
    assert_eq!(on_disk(&journal_dir), [7, 8, 9]);
}

#[test]
fn a_hard_limit_below_the_soft_one_is_refused() {
    let dir = temp_dir();
    let state = dir.path().join("archiver");
    let config = gated_config(dir.path(), &state, 4, 3);
    let error = Journal::open(&config).unwrap_err().to_string();
    assert!(error.contains("hard_max_total_bytes"), "{error}");
    // Equal is fine: nothing is held, the soft limit is the hard one.
    Journal::open(&gated_config(dir.path(), &state, 4, 4)).unwrap();
}

#[test]
fn without_a_soft_limit_only_the_hard_one_prunes_and_not_at_it() {
    let (_dir, state, journal_dir) = dirs();
    let mut config = gated_config(&journal_dir, &state, 1, 5);
    config.retention.max_total_bytes = None;
    let journal = Journal::open(&config).unwrap();
    // 0..=3 and the next: exactly the 5 allowed. Nothing goes, archived or not, nothing held.
    append_until_segment(&mut journal.appender(0).unwrap(), 3);
    write_watermark(&state, &[(journal.epoch(), 0)]);
    let report = journal.maintain().unwrap();
    assert!(report.pruned.is_empty(), "at the limit: {report:?}");
    assert!(
        report.held_for_archive.is_empty(),
        "at the limit: {report:?}"
    );
    // One more (4, created ahead by the pass, is now written to, and 5 comes next): over by
    // one. The archived 0 goes; nothing is held, the limit is met.
    append_until_segment(&mut journal.appender(1).unwrap(), 4);
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0], "{report:?}");
    assert!(report.pruned_unarchived.is_empty(), "{report:?}");
    assert!(report.held_for_archive.is_empty(), "{report:?}");
    // And one more: the oldest, unarchived, goes; the others are not held (no soft limit).
    append_until_segment(&mut journal.appender(2).unwrap(), 5);
    let report = journal.maintain().unwrap();
    let forced: Vec<u64> = report.pruned_unarchived.iter().map(|p| p.index).collect();
    assert_eq!(forced, [1], "{report:?}");
    assert!(report.held_for_archive.is_empty(), "{report:?}");
}

#[test]
fn a_segment_whose_header_cannot_be_read_is_held_and_goes_first_at_the_hard_limit() {
    let (_dir, state, journal_dir) = dirs();
    let journal = Journal::open(&gated_config(&journal_dir, &state, 2, 8)).unwrap();
    append_until_segment(&mut journal.appender(0).unwrap(), 4);
    write_watermark(&state, &[(journal.epoch(), 3)]);
    journal.maintain().unwrap();
    assert_eq!(on_disk(&journal_dir), [4, 5], "all archived: pruned");
    // A compressed segment 2 whose header cannot be read (its epoch unknown): not archived,
    // held, and no reason to stop pruning.
    std::fs::write(journal_dir.join(compressed_file_name(2)), [0xAB; 100]).unwrap();
    let report = journal.maintain().unwrap();
    assert_eq!(report.held_for_archive, [2], "{report:?}");

    // 2 and 4..=12 and the next: over the 8 segments allowed by 2 and 100 bytes. 2 goes
    // first, then the oldest others until it fits.
    append_until_segment(&mut journal.appender(1).unwrap(), 12);
    let report = journal.maintain().unwrap();
    let forced: Vec<(u64, u64)> = report
        .pruned_unarchived
        .iter()
        .map(|p| (p.index, p.epoch))
        .collect();
    let epoch = journal.epoch();
    assert_eq!(forced, [(2, 0), (4, epoch), (5, epoch)], "{report:?}");
}
