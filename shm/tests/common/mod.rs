//! Helpers shared by the journal's integration tests.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use levibot_shm::{Appender, FRAME_HEADER_LEN, JournalConfig, Position, RetentionPolicy};

/// Record type used by the tests.
pub const TEST_RECORD: levibot_shm::RecordType = levibot_shm::RecordType(0x100);

/// The segment size of `small_config`.
pub const SMALL_SEGMENT_SIZE: usize = 64 * 1024;

/// A small journal config (64 KiB segments, no prefault, keep everything) in `dir`.
pub fn small_config(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        segment_size: SMALL_SEGMENT_SIZE,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    }
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("levibot-shm-test")
        .tempdir()
        .expect("temp dir")
}

/// Appends 100-byte frames (`make_payload`, under the appender's writer id) to a journal of
/// `small_config`'s segment size until the frames go to segment `index`; returns each frame's
/// position, in order.
///
/// Bounded: a broken rollover (a bug, or a mutant under `scripts/mutants`) fails the test after
/// a few segments too many, instead of writing segments until the test is killed (a killed test
/// leaves its temp dir behind, and this loop once left 10 GiB of them).
pub fn append_until_segment(appender: &mut Appender, index: u64) -> Vec<Position> {
    const PAYLOAD_LEN: usize = 100;
    // A segment holds fewer frames than this: each takes more than its payload.
    let most_per_segment = (SMALL_SEGMENT_SIZE / PAYLOAD_LEN) as u64;
    let most_frames = (index + 2) * most_per_segment;
    let mut payload = Vec::new();
    let mut positions = Vec::new();
    loop {
        make_payload(
            appender.writer_id(),
            appender.next_sequence(),
            PAYLOAD_LEN,
            &mut payload,
        );
        let position = appender.append(TEST_RECORD, &payload).unwrap();
        positions.push(position);
        if position.split(SMALL_SEGMENT_SIZE).0 == index {
            return positions;
        }
        assert!(
            (positions.len() as u64) < most_frames,
            "{} frames appended and segment {index} is not current yet (last at {position:?})",
            positions.len()
        );
    }
}

/// FNV-1a, for payload checksums in tests.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A test payload: writer id, sequence, filler bytes derived from both, and a checksum trailer.
pub fn make_payload(writer_id: u16, sequence: u64, len: usize, out: &mut Vec<u8>) {
    assert!(len >= 18);
    out.clear();
    out.extend_from_slice(&writer_id.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    let mut x = sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ writer_id as u64;
    while out.len() < len - 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    let sum = fnv1a(out);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// Checks a payload made by `make_payload`; returns (writer_id, sequence).
pub fn check_payload(payload: &[u8]) -> (u16, u64) {
    let (body, sum) = payload.split_at(payload.len() - 8);
    assert_eq!(
        fnv1a(body),
        u64::from_le_bytes(sum.try_into().unwrap()),
        "payload checksum"
    );
    (
        u16::from_le_bytes(body[0..2].try_into().unwrap()),
        u64::from_le_bytes(body[2..10].try_into().unwrap()),
    )
}

pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(levibot_shm::layout::segment_file_name(index))
}

/// Writes a frame header by hand, as a writer would have left it.
pub fn write_raw_frame(
    dir: &Path,
    index: u64,
    offset: usize,
    frame_len: i32,
    writer: u16,
    seq: u64,
    payload: &[u8],
) {
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(dir, index))
        .unwrap();
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&frame_len.to_le_bytes());
    header[4..6].copy_from_slice(&TEST_RECORD.0.to_le_bytes());
    header[6..8].copy_from_slice(&writer.to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[24..28].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    file.write_all_at(&header, offset as u64).unwrap();
    file.write_all_at(payload, (offset + FRAME_HEADER_LEN) as u64)
        .unwrap();
}

/// Sets a segment's claimed tail by hand.
pub fn set_tail(dir: &Path, index: u64, tail: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(dir, index))
        .unwrap();
    file.write_all_at(&tail.to_le_bytes(), 128).unwrap();
}
