//! Bad files get a typed error naming the file and the offset; never a panic.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::common::*;
use levibot_shm::layout::HEADER_LEN;
use levibot_shm::{Journal, LAYOUT_VERSION_MAJOR, ShmError, StartAt, Tailer};
use levibot_testkit::seed;

/// A closed journal with one segment of a few frames; returns the segment's path.
fn journal_with_frames(dir: &Path) -> std::path::PathBuf {
    let journal = Journal::open(&small_config(dir)).unwrap();
    let mut a = journal.appender(0).unwrap();
    for i in 0..5u8 {
        a.append(TEST_RECORD, &[i; 40]).unwrap();
    }
    segment_path(dir, 0)
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

fn tail_all(dir: &Path) -> Result<usize, ShmError> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
    let mut n = 0;
    loop {
        let polled = tailer.poll(64, |_| n += 1)?;
        if polled.frames == 0 {
            return Ok(n);
        }
    }
}

fn assert_names_file(err: &ShmError, path: &Path) {
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[test]
fn wrong_magic() {
    let dir = temp_dir();
    let path = journal_with_frames(dir.path());
    patch(&path, 0, b"NOTAJRNL");
    for err in [
        tail_all(dir.path()).unwrap_err(),
        Journal::open(&small_config(dir.path())).unwrap_err(),
    ] {
        assert!(matches!(err, ShmError::BadMagic { .. }), "{err}");
        assert_names_file(&err, &path);
        assert!(err.to_string().contains("offset 0"), "{err}");
    }
}

#[test]
fn major_versions_outside_those_this_build_reads() {
    for major in [0, LAYOUT_VERSION_MAJOR + 1] {
        let dir = temp_dir();
        let path = journal_with_frames(dir.path());
        patch(&path, 8, &major.to_le_bytes());
        for err in [
            tail_all(dir.path()).unwrap_err(),
            Journal::open(&small_config(dir.path())).unwrap_err(),
        ] {
            assert!(
                matches!(err, ShmError::UnsupportedVersion { major: m, .. } if m == major),
                "{err}"
            );
            assert_names_file(&err, &path);
            assert!(err.to_string().contains("1.x to 2.x"), "{err}");
        }
    }
}

/// A journal a previous release wrote (major 1) is read, recovered from, and continued in a
/// new segment of this build's major version.
#[test]
fn the_previous_major_version_is_read_and_continued() {
    let dir = temp_dir();
    let path = journal_with_frames(dir.path());
    patch(&path, 8, &1u16.to_le_bytes());
    assert_eq!(tail_all(dir.path()).unwrap(), 5);
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    journal
        .appender(0)
        .unwrap()
        .append(TEST_RECORD, &[9; 40])
        .unwrap();
    drop(journal);
    assert_eq!(tail_all(dir.path()).unwrap(), 6);
    let header = std::fs::read(segment_path(dir.path(), 1)).unwrap();
    assert_eq!(
        u16::from_le_bytes([header[8], header[9]]),
        LAYOUT_VERSION_MAJOR
    );
}

#[test]
fn truncated_file() {
    let dir = temp_dir();
    let path = journal_with_frames(dir.path());
    // A file shorter than a header is measured against the header; one that has its header
    // (even exactly, and nothing more) against the segment size the header gives.
    let header = HEADER_LEN as u64;
    for (len, expected) in [(100u64, header), (header, 65536), (header + 1000, 65536)] {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        for err in [
            tail_all(dir.path()).unwrap_err(),
            Journal::open(&small_config(dir.path())).unwrap_err(),
        ] {
            assert!(
                matches!(err, ShmError::Truncated { len: l, expected: e, .. }
                    if (l, e) == (len, expected)),
                "{len}: {err}"
            );
            assert_names_file(&err, &path);
        }
    }
}

#[test]
fn corrupt_header_fields() {
    let dir = temp_dir();
    let path = journal_with_frames(dir.path());
    patch(&path, 16, &100_000u64.to_le_bytes());
    let err = tail_all(dir.path()).unwrap_err();
    assert!(
        matches!(err, ShmError::CorruptHeader { offset: 16, .. }),
        "{err}"
    );
    // A power of two past the largest size is corrupt too; the largest itself is a plausible
    // size, so this 64 KiB file is then short of it.
    patch(&path, 16, &(1u64 << 31).to_le_bytes());
    let err = tail_all(dir.path()).unwrap_err();
    assert!(
        matches!(err, ShmError::CorruptHeader { offset: 16, .. }),
        "{err}"
    );
    patch(&path, 16, &(1u64 << 30).to_le_bytes());
    let err = tail_all(dir.path()).unwrap_err();
    assert!(
        matches!(err, ShmError::Truncated { len: 65536, expected, .. } if expected == 1 << 30),
        "{err}"
    );
    patch(&path, 16, &(64u64 * 1024).to_le_bytes());
    patch(&path, 24, &9u64.to_le_bytes());
    let err = tail_all(dir.path()).unwrap_err();
    assert!(
        matches!(err, ShmError::CorruptHeader { offset: 24, .. }),
        "{err}"
    );
    assert_names_file(&err, &path);
}

#[test]
fn corrupt_frame_lengths() {
    let cases: [(i32, &str); 5] = [
        (8, "shorter than a frame header"),
        (-8, "shorter than a frame header"),
        (1 << 20, "past the end"),
        // Past the end by less than the frame's own offset.
        (1 << 16, "past the end"),
        (32 + 41, "payload_len"),
    ];
    for (frame_len, reason) in cases {
        let dir = temp_dir();
        let path = journal_with_frames(dir.path());
        // Corrupt the third frame (each is 32 + 40 -> 96 bytes aligned).
        let offset = HEADER_LEN + 2 * 96;
        patch(&path, offset as u64, &frame_len.to_le_bytes());
        let err = tail_all(dir.path()).unwrap_err();
        match &err {
            ShmError::CorruptFrame {
                offset: o,
                frame_len: l,
                ..
            } => {
                assert_eq!((*o, *l), (offset, frame_len as i64));
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(reason), "{err}");
        assert!(
            err.to_string().contains(&format!("offset {offset}")),
            "{err}"
        );
        assert_names_file(&err, &path);
        // Recovery refuses too, rather than cutting data it cannot account for.
        let err = Journal::open(&small_config(dir.path())).unwrap_err();
        assert!(matches!(err, ShmError::CorruptFrame { .. }), "{err}");
    }
}

#[test]
fn random_garbage_never_panics() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..300 {
        let dir = temp_dir();
        let path = journal_with_frames(dir.path());
        for _ in 0..rng.usize(1..8) {
            let offset = rng.u64(0..(HEADER_LEN as u64 + 1024));
            let mut bytes = vec![0u8; rng.usize(1..16)];
            rng.fill(&mut bytes);
            patch(&path, offset, &bytes);
        }
        // Either reads or fails with an error; a panic fails the test.
        let _ = tail_all(dir.path());
        let _ = Journal::open(&small_config(dir.path())).map(|j| j.recovery().clone());
    }
}

#[test]
fn corrupt_compressed_segment() {
    let dir = temp_dir();
    let path = dir
        .path()
        .join(levibot_shm::layout::compressed_file_name(0));
    std::fs::write(&path, b"this is not gzip").unwrap();
    let err = tail_all(dir.path()).unwrap_err();
    assert!(matches!(err, ShmError::Io { .. }), "{err}");
    assert_names_file(&err, &path);
}

/// Reads every frame, mapping each TSC stamp to wall-clock time as `levictl` does.
fn tail_all_with_times(dir: &Path) -> Result<usize, ShmError> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
    let mut n = 0;
    loop {
        let cal = tailer.calibration();
        let position = tailer.position();
        let polled = tailer.poll(64, |frame| {
            let _ = (cal.to_unix_ns(frame.tsc), cal.to_unix_ns(0), frame.position);
            n += 1;
        })?;
        let _ = (position, cal.to_unix_ns(u64::MAX));
        if polled.frames == 0 {
            return Ok(n);
        }
    }
}

/// Fuzzer finding (fuzz/regressions/journal/calibration-tiny): a TSC rate of 1e-300 ticks/ns
/// passed the header check, and turning a stamp into time overflowed (a panic). A rate no
/// clock has is a corrupt header, at its offset.
#[test]
fn implausible_tsc_rates_are_corrupt_headers() {
    for ticks_per_ns in [1e-300, f64::MIN_POSITIVE, 1e-12, 1e300] {
        let dir = temp_dir();
        let path = journal_with_frames(dir.path());
        patch(&path, 48, &ticks_per_ns.to_bits().to_le_bytes());
        let err = tail_all_with_times(dir.path()).unwrap_err();
        assert!(
            matches!(err, ShmError::CorruptHeader { offset: 48, .. }),
            "{ticks_per_ns}: {err}"
        );
        assert_names_file(&err, &path);
    }
    // The extremes still accepted map every stamp without overflowing.
    for ticks_per_ns in [1e-6f64, 1e6] {
        let dir = temp_dir();
        let path = journal_with_frames(dir.path());
        patch(&path, 48, &ticks_per_ns.to_bits().to_le_bytes());
        patch(&path, 56, &u64::MAX.to_le_bytes());
        patch(&path, 64, &u64::MAX.to_le_bytes());
        assert_eq!(tail_all_with_times(dir.path()).unwrap(), 5);
    }
}
