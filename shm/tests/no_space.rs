//! A full journal filesystem is an error, never a SIGBUS: on a small tmpfs mounted for the test,
//! appends, `maintain`, `Journal::open` and `CountersWriter::create` return `ShmError::NoSpace`,
//! everything committed before reads back intact, and retention prunes before it compresses.
//!
//! Mounting needs root (CI runs as root); otherwise each test prints that it skipped and passes.
//! A SIGBUS (what sparse segments gave) kills the test process, which fails the test (and
//! leaves its tmpfs mounted: no destructor runs).

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use levibot_shm::counters::CountersWriter;
use levibot_shm::{Journal, JournalConfig, RetentionPolicy, ShmError, StartAt, Tailer};
use levibot_testkit::{Tmpfs, fill_up};

const SEGMENT_SIZE: usize = 1 << 20;
/// 200 bytes of payload: 256-byte frames, about 4,000 per segment.
const PAYLOAD_LEN: usize = 200;

fn config(dir: &Path, retention: RetentionPolicy) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        segment_size: SEGMENT_SIZE,
        prefault: false,
        retention,
    }
}

/// Writes `bytes` into a new file of `dir`; returns its path.
fn take_bytes(dir: &Path, bytes: usize) -> PathBuf {
    let path = dir.join("filler");
    fs::write(&path, vec![0x5au8; bytes]).unwrap();
    path
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_no_temporaries(dir: &Path) {
    let names = names_in(dir);
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "a half-made file was left: {names:?}"
    );
}

/// Checks a `NoSpace` error: it names the directory and the bytes asked for.
fn assert_no_space(err: &ShmError, dir: &Path, expected_what: &str, expected_bytes: u64) {
    assert!(err.is_no_space(), "{err}");
    match err {
        ShmError::NoSpace {
            dir: d,
            what,
            bytes,
            ..
        } => {
            assert_eq!(
                (d.as_path(), *what, *bytes),
                (dir, expected_what, expected_bytes)
            );
        }
        other => panic!("expected NoSpace, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains(&dir.display().to_string()), "{text}");
    assert!(text.contains(&format!("{expected_bytes}-byte")), "{text}");
    assert!(text.contains("ENOSPC"), "{text}");
    assert!(std::error::Error::source(err).is_some(), "keeps its source");
}

/// Reads the whole journal and checks every frame: sequences `first..=last` of writer 0, in
/// order, with intact payloads. Returns how many frames it read.
fn check_all_frames(dir: &Path, first: u64, last: u64) -> u64 {
    let mut tailer = Tailer::open(dir, StartAt::Beginning).unwrap();
    let mut expected = first;
    loop {
        let polled = tailer
            .poll(1024, |f| {
                assert_eq!(check_payload(f.payload), (0, f.sequence));
                assert_eq!(f.sequence, expected, "frames in order, none missing");
                expected += 1;
            })
            .unwrap();
        if polled.frames == 0 {
            break;
        }
    }
    assert_eq!(expected, last + 1, "read through the last committed frame");
    expected - first
}

#[test]
fn a_full_filesystem_fails_appends_reopening_and_counters_with_no_space() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = fs.path();
    let journal = Journal::open(&config(dir, RetentionPolicy::keep_all())).unwrap();
    let mut appender = journal.appender(0).unwrap();
    let mut payload = Vec::new();
    let err = loop {
        let sequence = appender.next_sequence();
        make_payload(0, sequence, PAYLOAD_LEN, &mut payload);
        match appender.append(TEST_RECORD, &payload) {
            Ok(_) => {}
            Err(e) => break e,
        }
        assert!(
            sequence < 100_000,
            "a 4 MiB tmpfs cannot hold this many frames"
        );
    };
    // The rollover found no room for the next segment: no SIGBUS, a typed error.
    assert_no_space(&err, dir, "journal segment", SEGMENT_SIZE as u64);
    assert_no_temporaries(dir);
    let last = appender.next_sequence() - 1;
    assert!(last > 3 * 4000, "filled several segments first: {last}");
    // Trying again fails the same way, and commits nothing.
    make_payload(0, last + 1, PAYLOAD_LEN, &mut payload);
    let again = appender.append(TEST_RECORD, &payload).unwrap_err();
    assert!(again.is_no_space(), "{again}");
    assert_eq!(appender.next_sequence(), last + 1);
    assert_eq!(check_all_frames(dir, 1, last), last);

    // Reopening recovers the segments (they need no new room) but has none for this run's.
    drop(appender);
    drop(journal);
    let err = Journal::open(&config(dir, RetentionPolicy::keep_all())).unwrap_err();
    assert_no_space(&err, dir, "journal segment", SEGMENT_SIZE as u64);
    assert_no_temporaries(dir);
    assert_eq!(check_all_frames(dir, 1, last), last);

    // The counters file, too, is refused whole rather than mapped sparse.
    fill_up(dir);
    let counters = dir.join("counters.lvc");
    let err = CountersWriter::create(&counters, 1024, 1).err().unwrap();
    assert_no_space(&err, dir, "counters file", 4096 + 1024 * 256);
    assert!(!counters.exists());
    assert_no_temporaries(dir);
}

#[test]
fn maintain_reports_no_room_for_the_next_segment_and_appends_fail_cleanly() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = fs.path();
    let mut config = config(dir, RetentionPolicy::keep_all());
    config.prefault = true;
    let journal = Journal::open(&config).unwrap();
    let mut appender = journal.appender(0).unwrap();
    let mut payload = Vec::new();
    let mut maintain_error = None;
    let append_error = loop {
        let sequence = appender.next_sequence();
        if sequence.is_multiple_of(500)
            && let Err(e) = journal.maintain()
        {
            maintain_error.get_or_insert(e);
        }
        make_payload(0, sequence, PAYLOAD_LEN, &mut payload);
        if let Err(e) = appender.append(TEST_RECORD, &payload) {
            break e;
        }
        assert!(
            sequence < 100_000,
            "a 4 MiB tmpfs cannot hold this many frames"
        );
    };
    let maintain_error = maintain_error.expect("maintain found no room for the spare first");
    assert_no_space(&maintain_error, dir, "journal segment", SEGMENT_SIZE as u64);
    assert_no_space(&append_error, dir, "journal segment", SEGMENT_SIZE as u64);
    assert_no_temporaries(dir);
    let last = appender.next_sequence() - 1;
    assert_eq!(check_all_frames(dir, 1, last), last);
}

#[test]
fn pruning_makes_room_for_compression_and_the_next_segment() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = fs.path();
    let retention = RetentionPolicy {
        compress: true,
        raw_segments_kept: 0,
        max_age: None,
        max_total_bytes: Some(3 * SEGMENT_SIZE as u64),
        archive: None,
    };
    let journal = Journal::open(&config(dir, retention)).unwrap();
    let mut appender = journal.appender(0).unwrap();
    let mut payload = Vec::new();
    // Fill segments 0, 1 and 2 and start 3, without maintain: the filesystem is full. The
    // payloads are pseudo-random, so a compressed segment takes about as much as a raw one.
    let mut first_in_segment_2 = 0;
    loop {
        let sequence = appender.next_sequence();
        make_payload(0, sequence, PAYLOAD_LEN, &mut payload);
        let segment = appender
            .append(TEST_RECORD, &payload)
            .unwrap()
            .split(SEGMENT_SIZE)
            .0;
        if segment == 2 && first_in_segment_2 == 0 {
            first_in_segment_2 = sequence;
        }
        if segment == 3 {
            break;
        }
    }
    // Compressing first (or creating the next segment first) would find no room; pruning
    // segments 0 and 1 first makes it.
    let report = journal.maintain().unwrap();
    assert_eq!(report.pruned, [0, 1], "{report:?}");
    assert_eq!(report.compressed, [2], "{report:?}");
    assert!(report.compress_failed.is_empty(), "{report:?}");
    assert!(report.kept_for_floor.is_empty(), "{report:?}");
    assert_no_temporaries(dir);
    let names = names_in(dir);
    assert!(
        names.contains(&levibot_shm::layout::segment_file_name(4)),
        "the next segment is ready: {names:?}"
    );
    let last = appender.next_sequence() - 1;
    let read = check_all_frames(dir, first_in_segment_2, last);
    assert_eq!(read, last - first_in_segment_2 + 1);
}

#[test]
fn a_compression_without_room_keeps_the_raw_segment_and_leaves_no_partial_file() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = fs.path();
    let retention = RetentionPolicy {
        compress: true,
        raw_segments_kept: 0,
        max_age: None,
        max_total_bytes: None,
        archive: None,
    };
    let journal = Journal::open(&config(dir, retention)).unwrap();
    let mut appender = journal.appender(0).unwrap();
    let mut payload = Vec::new();
    // Segment 0 full, segment 1 started: 2 MiB taken; then leave only 512 KiB free.
    loop {
        let sequence = appender.next_sequence();
        make_payload(0, sequence, PAYLOAD_LEN, &mut payload);
        let position = appender.append(TEST_RECORD, &payload).unwrap();
        if position.split(SEGMENT_SIZE).0 == 1 {
            break;
        }
    }
    let filler = take_bytes(dir, 3 * SEGMENT_SIZE / 2);

    let err = journal.maintain().unwrap_err();
    // The compression of segment 0 ran out of room: its partial .gz is gone and the raw
    // segment stays. Then there was no room for the next segment either: that is the error.
    assert_no_space(&err, dir, "journal segment", SEGMENT_SIZE as u64);
    assert_no_temporaries(dir);
    let names = names_in(dir);
    assert!(
        names.contains(&levibot_shm::layout::segment_file_name(0)),
        "{names:?}"
    );
    assert!(
        !names.contains(&levibot_shm::layout::compressed_file_name(0)),
        "{names:?}"
    );
    let last = appender.next_sequence() - 1;
    assert_eq!(check_all_frames(dir, 1, last), last);

    // With room again, the next pass compresses it and prepares the next segment.
    fs::remove_file(filler).unwrap();
    let report = journal.maintain().unwrap();
    assert_eq!(report.compressed, [0], "{report:?}");
    assert!(report.compress_failed.is_empty(), "{report:?}");
    assert_eq!(check_all_frames(dir, 1, last), last);
}
