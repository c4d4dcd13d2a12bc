//! Journal behaviour: append and tail, positions, rollover, restarts, recovery of what a killed
//! writer leaves, missing segments, retention.

use crate::common::*;
use levibot_shm::layout::{FRAME_ALIGNMENT, HEADER_LEN, align_frame};
use levibot_shm::{
    FRAME_HEADER_LEN, Journal, Position, RecordType, RetentionPolicy, ShmError, StartAt, Tailer,
};

/// Reads everything available: (writer, sequence, payload) per frame.
fn drain(tailer: &mut Tailer) -> Vec<(u16, u64, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let polled = tailer
            .poll(1024, |f| {
                out.push((f.writer_id, f.sequence, f.payload.to_vec()))
            })
            .expect("poll");
        if polled.frames == 0 {
            return out;
        }
    }
}

#[test]
fn appended_frames_are_tailed_in_order_with_their_fields() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    assert!(!journal.recovery().recovered);
    let mut a = journal.appender(3).unwrap();
    let p0 = a.append(TEST_RECORD, b"one").unwrap();
    let p1 = a.append(RecordType(0x200), b"").unwrap();
    let p2 = a
        .append_with(TEST_RECORD, 5, |buf| buf.copy_from_slice(b"three"))
        .unwrap();
    assert_eq!(p0, Position(HEADER_LEN as u64));
    assert_eq!(p1.0, p0.0 + align_frame(FRAME_HEADER_LEN + 3) as u64);
    assert!(p2 > p1);

    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let mut frames = Vec::new();
    tailer
        .poll(10, |f| {
            frames.push((
                f.position,
                f.record_type,
                f.writer_id,
                f.sequence,
                f.payload.to_vec(),
            ))
        })
        .unwrap();
    assert_eq!(
        frames,
        vec![
            (p0, TEST_RECORD, 3, 1, b"one".to_vec()),
            (p1, RecordType(0x200), 3, 2, vec![]),
            (p2, TEST_RECORD, 3, 3, b"three".to_vec()),
        ]
    );
    assert_eq!(tailer.epoch(), journal.epoch());
    assert_eq!(tailer.writer_pid(), std::process::id());
    let cal = tailer.calibration();
    assert!(cal.ticks_per_ns > 0.0);
    assert_eq!(
        tailer
            .poll(10, |_| panic!("no more frames"))
            .unwrap()
            .frames,
        0
    );
}

#[test]
fn tsc_stamps_convert_to_wall_clock_time() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let mut a = journal.appender(0).unwrap();
    let before = levibot_shm::clock::unix_now_ns();
    a.append(TEST_RECORD, b"x").unwrap();
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let mut tsc = 0;
    tailer.poll(1, |f| tsc = f.tsc).unwrap();
    let at = tailer.calibration().to_unix_ns(tsc);
    assert!(at.abs_diff(before) < 1_000_000_000, "{at} vs {before}");
}

#[test]
fn start_at_end_and_at_a_position() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let mut a = journal.appender(0).unwrap();
    let positions: Vec<Position> = (0..10u8)
        .map(|i| a.append(TEST_RECORD, &[i; 7]).unwrap())
        .collect();

    let mut at_end = Tailer::open(dir.path(), StartAt::End).unwrap();
    assert!(drain(&mut at_end).is_empty());
    a.append(TEST_RECORD, b"new").unwrap();
    assert_eq!(drain(&mut at_end)[0].2, b"new");

    let mut at_pos = Tailer::open(dir.path(), StartAt::Position(positions[7])).unwrap();
    let got = drain(&mut at_pos);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].2, vec![7u8; 7]);

    let mid_frame = Position(positions[7].0 + FRAME_ALIGNMENT as u64 / 2);
    assert!(matches!(
        Tailer::open(dir.path(), StartAt::Position(mid_frame)),
        Err(ShmError::InvalidPosition { .. })
    ));
    let beyond = Position(positions[9].0 + 10 * FRAME_ALIGNMENT as u64);
    assert!(matches!(
        Tailer::open(dir.path(), StartAt::Position(beyond)),
        Err(ShmError::InvalidPosition { .. })
    ));
}

#[test]
fn start_at_end_is_not_fooled_by_the_prepared_spare_segment() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let mut a = journal.appender(0).unwrap();
    a.append(TEST_RECORD, b"before").unwrap();
    journal.maintain().unwrap();
    assert_eq!(levibot_shm::list_segments(dir.path()).unwrap().len(), 2);
    let mut tailer = Tailer::open(dir.path(), StartAt::End).unwrap();
    a.append(TEST_RECORD, b"after").unwrap();
    assert_eq!(drain(&mut tailer), vec![(0, 2, b"after".to_vec())]);
}

#[test]
fn a_rollover_racing_maintain_shares_one_file_per_segment() {
    let dir = temp_dir();
    let journal = std::sync::Arc::new(Journal::open(&small_config(dir.path())).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maintainer = {
        let (journal, stop) = (journal.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                journal.maintain().unwrap();
            }
        })
    };
    let mut a = journal.appender(0).unwrap();
    let mut payload = Vec::new();
    for seq in 1..=20_000 {
        make_payload(0, seq, 200, &mut payload);
        a.append(TEST_RECORD, &payload).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    maintainer.join().unwrap();
    let frames = drain(&mut Tailer::open(dir.path(), StartAt::Beginning).unwrap());
    assert_eq!(frames.len(), 20_000);
    for (i, (_, seq, p)) in frames.iter().enumerate() {
        assert_eq!((check_payload(p).1, *seq), (i as u64 + 1, i as u64 + 1));
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rollover_pads_the_segment_and_the_tailer_follows() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let mut a = journal.appender(1).unwrap();
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let mut payload = Vec::new();
    let mut seen = 0u64;
    // ~5 segments of 64 KiB; tail while writing, with maintain() pre-creating every other time.
    for seq in 1..=3000u64 {
        make_payload(1, seq, 18 + (seq as usize % 90), &mut payload);
        a.append(TEST_RECORD, &payload).unwrap();
        if seq % 500 == 0 {
            journal.maintain().unwrap();
        }
        if seq % 7 == 0 {
            for (w, s, p) in drain(&mut tailer) {
                assert_eq!((w, s), check_payload(&p));
                seen += 1;
                assert_eq!(s, seen);
            }
        }
    }
    for (_, s, p) in drain(&mut tailer) {
        check_payload(&p);
        seen += 1;
        assert_eq!(s, seen);
    }
    assert_eq!(seen, 3000);
    let segments = levibot_shm::list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 5, "{segments:?}");
    assert!(tailer.position().split(64 * 1024).0 >= 4);
}

#[test]
fn oversized_payloads_and_busy_writer_ids_are_refused() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let max = journal.payload_len_max();
    assert_eq!(max, 64 * 1024 / 4 - FRAME_HEADER_LEN);
    let mut a = journal.appender(0).unwrap();
    a.append(TEST_RECORD, &vec![1; max]).unwrap();
    let err = a.append(TEST_RECORD, &vec![1; max + 1]).unwrap_err();
    assert!(
        matches!(err, ShmError::PayloadTooLarge { len, .. } if len == max + 1),
        "{err}"
    );
    assert!(matches!(
        journal.appender(0),
        Err(ShmError::WriterIdUnavailable { writer_id: 0, .. })
    ));
    assert!(matches!(
        journal.appender(64),
        Err(ShmError::WriterIdUnavailable { .. })
    ));
    drop(a);
    let b = journal.appender(0).unwrap();
    assert_eq!(b.writer_id(), 0);
    assert_eq!(
        b.next_sequence(),
        2,
        "a new appender for an id goes on with its sequence"
    );

    // Dropping an appender frees its own id, and only that one, whatever the id's bit.
    let c = journal.appender(37).unwrap();
    assert_eq!(c.writer_id(), 37);
    let d = journal.appender(63).unwrap();
    assert_eq!(d.writer_id(), 63);
    drop(c);
    assert_eq!(journal.appender(37).unwrap().writer_id(), 37);
    assert!(matches!(
        journal.appender(63),
        Err(ShmError::WriterIdUnavailable { writer_id: 63, .. })
    ));
}

#[test]
fn the_heartbeat_reaches_readers_and_the_journal_says_its_segment_size() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.segment_size = 128 * 1024;
    let journal = Journal::open(&config).unwrap();
    assert_eq!(journal.segment_size(), 128 * 1024);
    let tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let before = tailer.writer_heartbeat_unix_ns();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let called_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    journal.heartbeat();
    let after = tailer.writer_heartbeat_unix_ns();
    assert!(
        after >= called_at && after > before,
        "heartbeat {before} -> {after}, called at {called_at}"
    );
}

#[test]
fn a_second_writer_process_is_locked_out() {
    let dir = temp_dir();
    let _journal = Journal::open(&small_config(dir.path())).unwrap();
    // The lock is per open file description, so a second open in this process conflicts too.
    assert!(matches!(
        Journal::open(&small_config(dir.path())),
        Err(ShmError::WriterLocked { .. })
    ));
}

#[test]
fn reopening_starts_a_new_segment_and_goes_on_with_each_writers_sequence() {
    let dir = temp_dir();
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        let mut a = journal.appender(0).unwrap();
        let mut b = journal.appender(5).unwrap();
        for _ in 0..10 {
            a.append(TEST_RECORD, b"a").unwrap();
        }
        b.append(TEST_RECORD, b"b").unwrap();
    }
    let mut tailer = Tailer::open(dir.path(), StartAt::End).unwrap();
    let old_epoch = tailer.epoch();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let report = journal.recovery().clone();
    assert!(report.recovered);
    assert_eq!(report.frames_committed, 11);
    assert_eq!(report.frames_cut, 0);
    assert_eq!(report.first_segment, 1);
    assert_ne!(journal.epoch(), old_epoch);
    assert_eq!(journal.appender(0).unwrap().next_sequence(), 11);
    assert_eq!(journal.appender(5).unwrap().next_sequence(), 2);
    assert_eq!(journal.appender(6).unwrap().next_sequence(), 1);

    let mut a = journal.appender(0).unwrap();
    a.append(TEST_RECORD, b"after").unwrap();
    let mut seen = Vec::new();
    let polled = tailer
        .poll(10, |f| seen.push((f.sequence, f.payload.to_vec())))
        .unwrap();
    assert_eq!(seen, vec![(11, b"after".to_vec())]);
    let restart = polled.writer_restart.expect("restart noticed");
    assert_eq!(
        (restart.old_epoch, restart.new_epoch),
        (old_epoch, journal.epoch())
    );
    assert!(!restart.new_journal);
}

#[test]
fn recovery_cuts_claimed_frames_and_keeps_committed_ones_behind_holes() {
    let dir = temp_dir();
    let end;
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        let mut a = journal.appender(0).unwrap();
        a.append(TEST_RECORD, b"first").unwrap();
        end = a.append(TEST_RECORD, b"second").unwrap().0 as usize + 64;
    }
    // What three killed writers could leave after those two frames:
    //  [end, +64)       claimed (negative length), half written
    //  [end+64, +96)    claimed but not even marked: zeros
    //  [end+96, +160)   committed by a fourth writer
    //  [end+160, +192)  claimed, at the very end
    let payload = b"committed after the holes";
    write_raw_frame(dir.path(), 0, end, -64, 1, 1, b"half written");
    write_raw_frame(
        dir.path(),
        0,
        end + 96,
        (FRAME_HEADER_LEN + payload.len()) as i32,
        2,
        7,
        payload,
    );
    write_raw_frame(dir.path(), 0, end + 160, -32, 3, 1, b"");
    set_tail(dir.path(), 0, (end + 192) as u64);

    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let before = drain(&mut tailer);
    assert_eq!(
        before.len(),
        2,
        "a tailer stops at the first uncommitted frame"
    );

    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let report = journal.recovery().clone();
    assert_eq!(report.frames_committed, 3);
    assert_eq!(report.frames_cut, 3);
    assert_eq!(report.bytes_cut, 64 + 32 + 32);
    assert_eq!(
        report.end_of_previous_run,
        Some(Position((end + 96 + 64) as u64))
    );
    assert_eq!(journal.appender(2).unwrap().next_sequence(), 8);
    assert_eq!(
        journal.appender(1).unwrap().next_sequence(),
        1,
        "its frame was cut"
    );

    let mut a = journal.appender(0).unwrap();
    a.append(TEST_RECORD, b"third").unwrap();
    let after = drain(&mut tailer);
    let payloads: Vec<&[u8]> = after.iter().map(|(_, _, p)| p.as_slice()).collect();
    assert_eq!(payloads, vec![&payload[..], b"third"]);

    let all = drain(&mut Tailer::open(dir.path(), StartAt::Beginning).unwrap());
    assert_eq!(all.len(), 4);
}

#[test]
fn tailers_and_recovery_read_nothing_past_the_claimed_tail() {
    let dir = temp_dir();
    let tail;
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        let mut a = journal.appender(0).unwrap();
        a.append(TEST_RECORD, b"first").unwrap();
        tail = a.append(TEST_RECORD, b"second").unwrap().0 as usize + 64;
    }
    // A committed-looking frame right at the tail, and one further on: no writer claimed
    // them, so no reader may look there (on a full tmpfs, faulting such a page in is a SIGBUS).
    let ghost = b"never claimed";
    let ghost_len = (FRAME_HEADER_LEN + ghost.len()) as i32;
    write_raw_frame(dir.path(), 0, tail, ghost_len, 0, 3, ghost);
    write_raw_frame(dir.path(), 0, tail + 4096, ghost_len, 0, 4, ghost);
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let payloads: Vec<Vec<u8>> = drain(&mut tailer).into_iter().map(|f| f.2).collect();
    assert_eq!(payloads, [b"first".to_vec(), b"second".to_vec()]);
    let end = Tailer::open(dir.path(), StartAt::End).unwrap().position();
    assert_eq!(end, Position(tail as u64));

    // Recovery, too, takes the claimed tail as the end of what the dead writer wrote.
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    assert_eq!(journal.recovery().frames_committed, 2);
    assert_eq!(
        journal.recovery().end_of_previous_run,
        Some(Position(tail as u64))
    );
    assert_eq!(journal.appender(0).unwrap().next_sequence(), 3);
    journal
        .appender(0)
        .unwrap()
        .append(TEST_RECORD, b"third")
        .unwrap();
    let all: Vec<Vec<u8>> = drain(&mut Tailer::open(dir.path(), StartAt::Beginning).unwrap())
        .into_iter()
        .map(|f| f.2)
        .collect();
    assert_eq!(
        all,
        [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
}

#[test]
fn a_frame_running_past_the_claimed_tail_is_corrupt() {
    let dir = temp_dir();
    {
        let journal = Journal::open(&small_config(dir.path())).unwrap();
        let mut a = journal.appender(0).unwrap();
        a.append(TEST_RECORD, b"first").unwrap(); // 64 bytes claimed
    }
    // Make the committed frame claim 64 bytes more than were claimed for it.
    let payload = [7u8; 64 + 5];
    write_raw_frame(
        dir.path(),
        0,
        HEADER_LEN,
        (FRAME_HEADER_LEN + payload.len()) as i32,
        0,
        1,
        &payload,
    );
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let err = tailer.poll(10, |_| panic!("not a frame")).unwrap_err();
    assert!(
        matches!(err, ShmError::CorruptFrame { offset, .. } if offset == HEADER_LEN),
        "{err}"
    );
    assert!(err.to_string().contains("claimed tail"), "{err}");
}

#[test]
fn a_deleted_segment_is_reported_and_skipped() {
    let dir = temp_dir();
    let journal = Journal::open(&small_config(dir.path())).unwrap();
    let mut a = journal.appender(0).unwrap();
    for _ in 0..2000 {
        a.append(TEST_RECORD, &[9; 100]).unwrap();
    }
    assert!(levibot_shm::list_segments(dir.path()).unwrap().len() >= 4);
    std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let mut count = 0;
    let err = loop {
        match tailer.poll(100, |_| count += 1) {
            Ok(p) => assert!(p.frames > 0, "stalled before the missing segment"),
            Err(e) => break e,
        }
    };
    match &err {
        ShmError::SegmentMissing {
            index: 1,
            resumed_at: Some(2),
            path,
        } => {
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    let first_segment_frames = count;
    count += drain(&mut tailer).len();
    assert!(count > first_segment_frames, "goes on after the gap");
}

#[test]
fn a_replaced_journal_is_noticed_by_an_idle_tailer() {
    let dir = temp_dir();
    let path = dir.path().join("j");
    let old_epoch;
    {
        let journal = Journal::open(&small_config(&path)).unwrap();
        let mut a = journal.appender(0).unwrap();
        for _ in 0..1000 {
            a.append(TEST_RECORD, &[1; 100]).unwrap();
        }
        old_epoch = journal.epoch();
    }
    let mut tailer = Tailer::open(&path, StartAt::End).unwrap();
    std::fs::remove_dir_all(&path).unwrap();
    let journal = Journal::open(&small_config(&path)).unwrap();
    journal
        .appender(0)
        .unwrap()
        .append(TEST_RECORD, b"fresh")
        .unwrap();
    let mut restart = None;
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let polled = tailer.poll(10, |f| seen.push(f.payload.to_vec())).unwrap();
        if let Some(r) = polled.writer_restart {
            restart = Some(r);
        }
        if !seen.is_empty() {
            break;
        }
    }
    let restart = restart.expect("the new journal is noticed");
    assert!(restart.new_journal);
    assert_eq!(
        (restart.old_epoch, restart.new_epoch),
        (old_epoch, journal.epoch())
    );
    assert_eq!(seen, vec![b"fresh".to_vec()]);
}

#[test]
fn maintain_seals_compresses_and_prunes_and_tailers_read_compressed_segments() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.retention = RetentionPolicy {
        compress: true,
        raw_segments_kept: 1,
        max_age: None,
        max_total_bytes: None,
        archive: None,
    };
    let journal = Journal::open(&config).unwrap();
    let mut a = journal.appender(0).unwrap();
    let mut payload = Vec::new();
    for seq in 1..=3000 {
        make_payload(0, seq, 100, &mut payload);
        a.append(TEST_RECORD, &payload).unwrap();
    }
    let report = journal.maintain().unwrap();
    assert!(report.sealed.len() >= 4, "{report:?}");
    assert_eq!(
        report.compressed.len(),
        report.sealed.len() - 1,
        "{report:?}"
    );
    assert!(report.pruned.is_empty());
    let listing = levibot_shm::list_segments(dir.path()).unwrap();
    assert!(listing.iter().any(|s| s.compressed));
    let newest_sealed = *report.sealed.iter().max().unwrap();
    let spare = listing.last().unwrap();
    assert_eq!(
        (spare.index, spare.compressed),
        (newest_sealed + 2, false),
        "spare created ahead"
    );
    assert_eq!(
        report.total_bytes,
        segment_bytes_on_disk(dir.path()),
        "the total counts every segment file, the spare just created included"
    );

    // Everything is still readable, from the compressed segments on.
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let frames = drain(&mut tailer);
    assert_eq!(frames.len(), 3000);
    for (i, (_, seq, p)) in frames.iter().enumerate() {
        assert_eq!(check_payload(p).1, *seq);
        assert_eq!(*seq, i as u64 + 1);
    }

    // Now prune by size: keep at most ~2 segments' worth.
    drop(a);
    drop(journal);
    config.retention.max_total_bytes = Some(3 * 64 * 1024);
    let journal = Journal::open(&config).unwrap();
    let report = journal.maintain().unwrap();
    assert!(!report.pruned.is_empty(), "{report:?}");
    assert!(
        report.total_bytes <= 3 * 64 * 1024 + 64 * 1024,
        "{report:?}"
    );
    assert_eq!(report.total_bytes, segment_bytes_on_disk(dir.path()));
    let oldest = levibot_shm::list_segments(dir.path()).unwrap()[0].index;
    assert!(oldest > 0);
    // A tailer from the beginning starts at the oldest segment left.
    let tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    assert_eq!(tailer.position().split(64 * 1024).0, oldest);
}

#[test]
fn prune_by_age_keeps_the_current_segment() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    config.retention.max_age = Some(std::time::Duration::from_millis(1));
    let journal = Journal::open(&config).unwrap();
    let mut a = journal.appender(0).unwrap();
    for _ in 0..2000 {
        a.append(TEST_RECORD, &[3; 100]).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let report = journal.maintain().unwrap();
    assert!(report.pruned.len() >= 3, "{report:?}");
    a.append(TEST_RECORD, b"still writing").unwrap();
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    let frames = drain(&mut tailer);
    assert_eq!(frames.last().unwrap().2, b"still writing");
}

#[test]
fn bad_configs_are_refused_with_the_key() {
    let dir = temp_dir();
    let mut config = small_config(dir.path());
    // Not a power of two (though in range), and a power of two below the range: each is refused
    // by the config check itself, before any file is made.
    for size in [100_000, 3 * 64 * 1024, 32 * 1024] {
        config.segment_size = size;
        let err = Journal::open(&config).unwrap_err();
        assert!(
            matches!(
                err,
                ShmError::Config {
                    key: "segment_size",
                    ..
                }
            ),
            "{size}: {err}"
        );
        assert!(err.to_string().contains(&size.to_string()), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{size}");
    }
    config.segment_size = 64 * 1024;
    config.retention.max_total_bytes = Some(0);
    let err = Journal::open(&config).unwrap_err();
    assert!(
        err.to_string().contains("retention.max_total_bytes"),
        "{err}"
    );
}

#[test]
fn tailing_an_empty_directory_is_an_error() {
    let dir = temp_dir();
    let err = Tailer::open(dir.path(), StartAt::Beginning).err().unwrap();
    assert!(matches!(err, ShmError::NoJournal { .. }), "{err}");
    let _ = HEADER_LEN;
}

/// The bytes the journal's segment files (raw and compressed) take, as the filesystem reports.
fn segment_bytes_on_disk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("journal-") && (name.ends_with(".lvj") || name.ends_with(".lvj.gz"))
        })
        .map(|entry| entry.metadata().unwrap().len())
        .sum()
}
