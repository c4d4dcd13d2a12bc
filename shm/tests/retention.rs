//! Retention: a failed compression neither stops pruning nor loses the raw segment, and the
//! retention floor keeps what recovery replays. (Retention on a full filesystem is in
//! `no_space.rs`.)

use std::path::Path;

use crate::common::*;
use levibot_shm::layout::{compressed_file_name, segment_file_name};
use levibot_shm::{Journal, Position, RetentionPolicy, StartAt, Tailer, list_segments};

/// Appends frames of writer 0 until segment `last_segment` is current; returns the position of
/// each frame, by sequence (index 0 is sequence 1).
fn fill_segments(journal: &Journal, last_segment: u64) -> Vec<Position> {
    append_until_segment(&mut journal.appender(0).unwrap(), last_segment)
}

/// The sequences a tailer reads from the beginning, checking each payload.
fn read_sequences(dir: &Path) -> Vec<u64> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning).unwrap();
    let mut sequences = Vec::new();
    while tailer
        .poll(1024, |f| {
            assert_eq!(check_payload(f.payload), (0, f.sequence));
            sequences.push(f.sequence);
        })
        .unwrap()
        .frames
        > 0
    {}
    sequences
}

fn indexes(dir: &Path) -> Vec<(u64, bool)> {
    list_segments(dir)
        .unwrap()
        .iter()
        .map(|s| (s.index, s.compressed))
        .collect()
}

#[test]
fn a_failed_compression_keeps_its_raw_segment_and_does_not_stop_pruning() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.retention = RetentionPolicy {
        compress: true,
        raw_segments_kept: 0,
        max_age: None,
        // Segments 0..=5 raw and the next one: 7 segments; 4 fit.
        max_total_bytes: Some(4 * SMALL_SEGMENT_SIZE as u64),
        archive: None,
    };
    let journal = Journal::open(&config).unwrap();
    let positions = fill_segments(&journal, 5);
    // Compressing segment 4 cannot create its temporary file.
    let blocker = dir.path().join(format!("{}.tmp", compressed_file_name(4)));
    std::fs::create_dir(&blocker).unwrap();

    let report = journal
        .maintain()
        .expect("a failed compression is not an error");
    assert_eq!(report.sealed, [0, 1, 2, 3, 4], "{report:?}");
    assert_eq!(report.pruned, [0, 1, 2], "pruned first: {report:?}");
    assert_eq!(
        report.compressed,
        [3],
        "the others still compressed: {report:?}"
    );
    assert_eq!(report.compress_failed.len(), 1, "{report:?}");
    let failure = &report.compress_failed[0];
    assert_eq!(failure.index, 4);
    assert!(!failure.no_space, "{failure:?}");
    assert!(
        failure.error.contains(&blocker.display().to_string()),
        "{failure:?}"
    );
    assert!(dir.path().join(segment_file_name(4)).exists());
    assert_eq!(
        indexes(dir.path()),
        [(3, true), (4, false), (5, false), (6, false)]
    );

    // Nothing from segment 3 on is lost.
    let first_kept = positions
        .iter()
        .position(|p| p.split(SMALL_SEGMENT_SIZE).0 == 3)
        .unwrap() as u64
        + 1;
    let expected: Vec<u64> = (first_kept..=positions.len() as u64).collect();
    assert_eq!(read_sequences(dir.path()), expected);

    // Once the obstacle is gone, the next pass compresses it.
    std::fs::remove_dir(&blocker).unwrap();
    let report = journal.maintain().unwrap();
    assert_eq!(report.compressed, [4], "{report:?}");
    assert!(report.compress_failed.is_empty(), "{report:?}");
    assert_eq!(read_sequences(dir.path()), expected);
}

#[test]
fn the_retention_floor_keeps_its_segment_and_later_ones_whatever_the_size_limit() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.retention = RetentionPolicy {
        compress: true,
        raw_segments_kept: 1,
        max_age: None,
        max_total_bytes: Some(2 * SMALL_SEGMENT_SIZE as u64),
        archive: None,
    };
    let journal = Journal::open(&config).unwrap();
    assert_eq!(journal.retention_floor(), None);
    let positions = fill_segments(&journal, 7);
    // The floor is a frame in the middle of segment 3.
    let in_segment_3: Vec<usize> = (0..positions.len())
        .filter(|&i| positions[i].split(SMALL_SEGMENT_SIZE).0 == 3)
        .collect();
    let floor_at = in_segment_3[in_segment_3.len() / 2];
    journal.set_retention_floor(positions[floor_at]);
    assert_eq!(journal.retention_floor(), Some(3));

    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0, 1, 2], "{report:?}");
    assert_eq!(report.kept_for_floor, [3, 4, 5, 6], "{report:?}");
    assert!(report.size_limit_exceeded, "{report:?}");
    // Kept, and compressed but the newest (the tailers read .gz).
    assert_eq!(
        indexes(dir.path()),
        [
            (3, true),
            (4, true),
            (5, true),
            (6, false),
            (7, false),
            (8, false)
        ]
    );
    // Recovery's replay from the floor finds every frame from there on.
    let mut tailer = Tailer::open(dir.path(), StartAt::Position(positions[floor_at])).unwrap();
    let mut sequences = Vec::new();
    while tailer
        .poll(1024, |f| sequences.push(f.sequence))
        .unwrap()
        .frames
        > 0
    {}
    let expected: Vec<u64> = (floor_at as u64 + 1..=positions.len() as u64).collect();
    assert_eq!(sequences, expected);

    // A later floor lets the older segments go.
    journal.set_retention_floor(positions[positions.len() - 1]);
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [3, 4, 5, 6], "{report:?}");
    assert!(report.kept_for_floor.is_empty(), "{report:?}");
    journal.clear_retention_floor();
    assert_eq!(journal.retention_floor(), None);
}

#[test]
fn the_retention_floor_holds_against_the_age_limit_too() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.retention.max_age = Some(std::time::Duration::from_millis(1));
    let journal = Journal::open(&config).unwrap();
    let positions = fill_segments(&journal, 4);
    let first_in_2 = positions
        .iter()
        .position(|p| p.split(SMALL_SEGMENT_SIZE).0 == 2)
        .unwrap();
    journal.set_retention_floor(positions[first_in_2]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0, 1], "{report:?}");
    assert_eq!(report.kept_for_floor, [2, 3], "{report:?}");
    assert!(!report.size_limit_exceeded, "no size limit: {report:?}");
    let expected: Vec<u64> = (first_in_2 as u64 + 1..=positions.len() as u64).collect();
    assert_eq!(read_sequences(dir.path()), expected);
}

#[test]
fn keep_all_seals_but_neither_compresses_nor_prunes() {
    let dir = temp_dir();
    // small_config's retention is keep_all; beyond the default policy's two raw segments, which
    // it would compress.
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let positions = fill_segments(&journal, 5);
    let report = journal.maintain().unwrap();
    assert_eq!(report.sealed, [0, 1, 2, 3, 4], "{report:?}");
    assert!(report.compressed.is_empty(), "{report:?}");
    assert!(report.pruned.is_empty(), "{report:?}");
    assert_eq!(
        indexes(dir.path()),
        (0..=6).map(|i| (i, false)).collect::<Vec<_>>()
    );
    let every: Vec<u64> = (1..=positions.len() as u64).collect();
    assert_eq!(read_sequences(dir.path()), every);
}
