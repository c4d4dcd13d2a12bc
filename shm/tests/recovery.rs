//! Reopening a journal a writer left behind (a crash: its segments unsealed): what recovery
//! reports, where each writer's sequence goes on, and what it tidies up. (Frames cut and holes
//! are in `journal.rs`; corrupt headers in `corrupt.rs`.)

use crate::common::*;
use levibot_shm::layout::{align_frame, compressed_file_name, segment_file_name};
use levibot_shm::{FRAME_HEADER_LEN, Journal, Position, list_segments};

/// Appends `count` frames of `payload` and returns the position just after the last one.
fn append_frames(appender: &mut levibot_shm::Appender, count: usize, payload: &[u8]) -> Position {
    let mut end = Position(0);
    for _ in 0..count {
        let at = appender.append(TEST_RECORD, payload).unwrap();
        end = Position(at.0 + align_frame(FRAME_HEADER_LEN + payload.len()) as u64);
    }
    end
}

/// Appends frames until the appender's frames go to segment `index`; returns the sequence of
/// the last frame appended.
fn append_until_in_segment(appender: &mut levibot_shm::Appender, index: u64) -> u64 {
    append_until_segment(appender, index);
    appender.next_sequence() - 1
}

#[test]
fn the_spare_segment_made_ahead_does_not_move_the_end_of_the_previous_run() {
    let dir = temp_dir();
    let end = {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        let mut appender = journal.appender(0).unwrap();
        let end = append_frames(&mut appender, 3, b"order");
        // maintain() creates segment 1 ahead of the rollover: unsealed and empty at the crash.
        journal.maintain().unwrap();
        assert_eq!(list_segments(dir.path()).unwrap().len(), 2);
        end
    };
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let report = journal.recovery();
    assert!(report.recovered);
    assert_eq!(
        report.segments_scanned, 2,
        "segment 0 and the spare: {report:?}"
    );
    assert_eq!(report.frames_committed, 3);
    assert_eq!(
        report.end_of_previous_run,
        Some(end),
        "the last frame's end, not the empty spare's start: {report:?}"
    );
    assert_eq!(report.first_segment, 2);
}

#[test]
fn a_run_that_wrote_nothing_has_no_end_and_scans_only_its_own_segment() {
    let dir = temp_dir();
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        append_frames(&mut journal.appender(0).unwrap(), 2, b"fill");
    }
    // The second run writes nothing: its segment is empty when it dies.
    drop(Journal::open(&small_config(dir.path())).unwrap());
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let report = journal.recovery();
    assert_eq!(
        report.segments_scanned, 1,
        "segment 0 was sealed by the second run's recovery: {report:?}"
    );
    assert_eq!(report.frames_committed, 0);
    assert_eq!(report.end_of_previous_run, None, "{report:?}");
    assert_eq!(journal.appender(0).unwrap().next_sequence(), 3);
}

#[test]
fn each_writers_sequence_goes_on_from_the_newest_segment_it_entered() {
    let dir = temp_dir();
    let (last_of_1, last_of_2, last_of_3);
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        // Writer 2 and writer 3 write in segment 0 only.
        let mut two = journal.appender(2).unwrap();
        append_frames(&mut two, 4, b"two");
        last_of_2 = two.next_sequence() - 1;
        let mut three = journal.appender(3).unwrap();
        append_frames(&mut three, 6, b"three");
        last_of_3 = three.next_sequence() - 1;
        drop(three);
        // Writer 1 writes in segment 0 and goes on into segment 1.
        let mut one = journal.appender(1).unwrap();
        last_of_1 = append_until_in_segment(&mut one, 1);
        // Writer 3 comes back (a new appender, in segment 1) and dies before writing anything:
        // segment 1 holds its first sequence and none of its frames.
        let three = journal.appender(3).unwrap();
        assert_eq!(three.next_sequence(), last_of_3 + 1);
    }
    assert_eq!((last_of_2, last_of_3), (4, 6));
    assert!(last_of_1 > 100, "{last_of_1}");

    let journal = Journal::open(&small_config(dir.path())).unwrap();
    for (writer, last) in [(1, last_of_1), (2, last_of_2), (3, last_of_3)] {
        assert_eq!(
            journal.appender(writer).unwrap().next_sequence(),
            last + 1,
            "writer {writer}: the newest segment's frames and slots decide, not older ones"
        );
    }
    drop(journal);

    // Retention prunes segment 0. Writer 3's sequence still goes on from what segment 1 says,
    // though none of its frames is left; writer 1's from its frames in segment 1.
    std::fs::remove_file(segment_path(dir.path(), 0)).unwrap();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    assert_eq!(journal.appender(3).unwrap().next_sequence(), last_of_3 + 1);
    assert_eq!(journal.appender(1).unwrap().next_sequence(), last_of_1 + 1);
}

#[test]
fn a_frame_with_an_impossible_writer_id_does_not_break_recovery() {
    let dir = temp_dir();
    let end = {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        append_frames(&mut journal.appender(0).unwrap(), 2, b"real").0 as usize
    };
    // A committed frame whose writer id is one past the last valid one (64), as a stray write
    // into the segment could leave it.
    let payload = b"stray";
    let frame_len = FRAME_HEADER_LEN + payload.len();
    write_raw_frame(dir.path(), 0, end, frame_len as i32, 64, 9, payload);
    set_tail(dir.path(), 0, (end + align_frame(frame_len)) as u64);

    let journal = Journal::open(&small_config(dir.path())).unwrap();
    assert_eq!(journal.recovery().frames_committed, 3);
    assert_eq!(journal.appender(0).unwrap().next_sequence(), 3);
    assert_eq!(journal.appender(63).unwrap().next_sequence(), 1);
}

#[test]
fn temporaries_a_crash_left_are_removed_and_other_files_kept() {
    let dir = temp_dir();
    drop(Journal::open(&small_config(dir.path())).unwrap());
    // A segment creation and a compression, each interrupted before its rename.
    let leftovers = [
        format!("{}.12345.tmp", segment_file_name(1)),
        format!("{}.tmp", compressed_file_name(0)),
    ];
    for name in &leftovers {
        std::fs::write(dir.path().join(name), b"half written").unwrap();
    }
    std::fs::write(dir.path().join("notes.tmp"), b"not the journal's").unwrap();

    let _journal = Journal::open(&small_config(dir.path())).unwrap();
    for name in &leftovers {
        assert!(!dir.path().join(name).exists(), "{name} is left");
    }
    assert!(dir.path().join("notes.tmp").exists());
}

#[test]
fn recovery_reads_no_old_segment_whose_writers_went_on_and_tailers_still_report_its_damage() {
    let dir = temp_dir();
    let damaged;
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        let mut appender = journal.appender(0).unwrap();
        damaged = appender.append(TEST_RECORD, b"damaged later").unwrap();
        append_until_in_segment(&mut appender, 1);
        journal.maintain().unwrap(); // seals segment 0
    }
    // Damage segment 0's first frame: its payload_len no longer agrees with its length.
    let (index, offset) = damaged.split(SMALL_SEGMENT_SIZE);
    assert_eq!(index, 0);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir.path(), 0))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &999u32.to_le_bytes(), offset as u64 + 24)
        .unwrap();

    // Writer 0's sequence is settled by segment 1, so recovery has no reason to read segment 0's
    // frames, and the writer can start.
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let next = journal.appender(0).unwrap().next_sequence();
    assert!(next > 100, "{next}");
    // The damage is not hidden: a tailer from the beginning stops there and names the offset.
    let mut tailer =
        levibot_shm::Tailer::open(dir.path(), levibot_shm::StartAt::Beginning).unwrap();
    let err = tailer.poll(16, |_| {}).unwrap_err();
    assert!(
        matches!(err, levibot_shm::ShmError::CorruptFrame { offset: o, .. } if o == offset),
        "{err}"
    );
}

#[test]
fn recovery_decompresses_no_old_segment_whose_writers_went_on() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.retention = levibot_shm::RetentionPolicy {
        compress: true,
        raw_segments_kept: 0,
        max_age: None,
        max_total_bytes: None,
        archive: None,
    };
    let last = {
        let journal = Journal::open(&config).unwrap();
        let mut appender = journal.appender(0).unwrap();
        let last = append_until_in_segment(&mut appender, 2);
        journal.maintain().unwrap(); // seals and compresses segments 0 and 1
        last
    };
    let gz = dir.path().join(compressed_file_name(0));
    assert!(gz.exists(), "{:?}", list_segments(dir.path()).unwrap());
    // Cut segment 0's gzip stream in half: its header still decompresses, its frames do not.
    let len = std::fs::metadata(&gz).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&gz)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    // Writer 0 is settled by segment 2 (raw, unsealed): segment 0 is read up to its header only
    // (every segment's header is checked), so the writer starts.
    let journal = Journal::open(&config).unwrap();
    assert_eq!(journal.appender(0).unwrap().next_sequence(), last + 1);
    drop(journal);
    // A damaged header is still refused, naming the file.
    std::fs::write(&gz, b"not gzip").unwrap();
    let err = Journal::open(&config).unwrap_err();
    assert!(
        err.to_string().contains("journal-0000000000.lvj.gz"),
        "{err}"
    );
}
