//! Checkpoints (`daemon::checkpoint`; the harness: `common/crash.rs`): a `ShadowRecovery` runs
//! beside the pipeline as the daemon runs it (started from start-up recovery, checkpointing at
//! once, catching up and checkpointing at random moments, caught up or lagging by a random
//! number of frames), and recovery from each checkpoint equals the full replay
//! (`recover_from_start`) in everything (`Recovered::state`, the whole replayed state); with
//! tiny segments compressed and pruned by the journal's own maintenance, recovery from the last
//! checkpoint (whose P lies in an earlier, compressed segment) equals the full replay of the
//! whole journal, kept aside by hard links, and the live engine; a checkpoint without its end,
//! with a wrong count or with a stray writer's record is ignored; a checkpoint's P pruned, or no
//! checkpoint and no segment 0, is `Pruned`; a checkpoint carries its instruments' definitions;
//! a shadow that lost frames stops.

use std::path::Path;

use levibot_daemon::checkpoint::{
    CATCH_UP_FRAMES_MAX, Checkpoint, CheckpointError, CheckpointWritten, ShadowRecovery,
};
use levibot_daemon::recovery::{Recovered, RecoveryError, recover, recover_from_start};
use levibot_engine::risk::RiskLimits;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::codes::writer_id;
use levibot_shm::layout::{SEGMENT_SIZE_MIN, segment_file_name};
use levibot_shm::records::{
    BookTicker, CheckpointBegin, CheckpointEnd, CheckpointFills, CheckpointInstrument,
    CheckpointMarks, CheckpointOrder, ExecutionReport, OrderRequest, Record, SentOrder, exec_type,
    order_kind, record_type,
};
use levibot_shm::{
    Appender, Journal, JournalConfig, Position, RecordType, RetentionPolicy, StartAt, Tailer,
    list_segments,
};

use crate::common::crash::*;

// ------------------------------------------------------------------------------------------------
// Checkpoints.

/// Two recoveries of the same journal agree on everything: the whole replayed state (as a
/// checkpoint carries it) and what `Recovered` and its engine say.
fn assert_same_recovery(a: &Recovered, b: &Recovered, instrument_id: u32, ctx: &str) {
    let (sa, sb) = (a.state(), b.state());
    assert_eq!(
        sa.begin, sb.begin,
        "{ctx}: counts, ids, sequence numbers, trip"
    );
    assert_eq!(sa.instruments, sb.instruments, "{ctx}: ledgers");
    assert_eq!(sa.orders, sb.orders, "{ctx}: open orders");
    assert_eq!(sa.marks, sb.marks, "{ctx}: client-order-id marks");
    assert_eq!(sa.fills, sb.fills, "{ctx}: fill stamps");
    assert_eq!(a.open_orders, b.open_orders, "{ctx}");
    assert_eq!(a.positions, b.positions, "{ctx}");
    assert_eq!(a.next_client_order_id, b.next_client_order_id, "{ctx}");
    assert_eq!(a.seq_nums, b.seq_nums, "{ctx}");
    assert_eq!(a.trading_state, b.trading_state, "{ctx}");
    let counts = |r: &Recovered| {
        (
            r.orders_sent,
            r.reports,
            r.targets_gone,
            r.skipped,
            r.was_clean_stop,
            r.found_journal,
            r.runs,
            r.frames,
            r.end,
        )
    };
    assert_eq!(counts(a), counts(b), "{ctx}");
    let (ea, eb) = (&a.engine, &b.engine);
    assert_eq!(ea.engine_state(), eb.engine_state(), "{ctx}");
    assert_eq!(
        ea.ledger_state(instrument_id),
        eb.ledger_state(instrument_id),
        "{ctx}"
    );
    assert_eq!(
        ea.realised_pnl(instrument_id),
        eb.realised_pnl(instrument_id),
        "{ctx}"
    );
    assert_eq!(ea.pnl(), eb.pnl(), "{ctx}");
    assert_eq!(ea.exposure(), eb.exposure(), "{ctx}");
    assert_eq!(ea.pending_trip(), eb.pending_trip(), "{ctx}");
    assert_eq!(
        ea.next_client_order_id(1),
        eb.next_client_order_id(1),
        "{ctx}"
    );
}

/// Recovery from the journal's last checkpoint, which must be `written`, and the full replay
/// agree.
fn assert_checkpoint_recovers(
    dir: &Path,
    written: &CheckpointWritten,
    limits: RiskLimits,
    instruments: &InstrumentTable,
    instrument_id: u32,
    ctx: &str,
) -> Recovered {
    let with = recover(dir, limits, instruments).unwrap();
    let used = with
        .checkpoint
        .unwrap_or_else(|| panic!("{ctx}: no checkpoint used"));
    assert_eq!(
        (used.checkpoint_id, used.position, used.replay_from),
        (written.checkpoint_id, written.begin, written.replay_from),
        "{ctx}"
    );
    let full = recover_from_start(dir, limits, instruments).unwrap();
    assert_eq!(full.checkpoint, None, "{ctx}");
    assert_same_recovery(&with, &full, instrument_id, ctx);
    let (frames, end_records) = checkpoint_frames(dir, written);
    assert_eq!(
        (written.records, end_records),
        (frames, frames - 2),
        "{ctx}: the records the writer and the end record count are the frames in the journal"
    );
    with
}

/// Counted in the journal, not by the checkpoint code: the frames of `written`'s checkpoint
/// from its begin to its end, both included, and the body count its end record states.
fn checkpoint_frames(dir: &Path, written: &CheckpointWritten) -> (u64, u64) {
    let checkpoint_types = [
        CheckpointBegin::RECORD_TYPE,
        CheckpointInstrument::RECORD_TYPE,
        CheckpointOrder::RECORD_TYPE,
        CheckpointMarks::RECORD_TYPE,
        CheckpointFills::RECORD_TYPE,
        CheckpointEnd::RECORD_TYPE,
    ];
    let mut tailer = Tailer::open(dir, StartAt::Position(written.begin)).unwrap();
    let (mut frames, mut end_records) = (0, None);
    while end_records.is_none() {
        let polled = tailer
            .poll(1, |f| {
                if checkpoint_types.contains(&f.record_type) {
                    frames += 1;
                }
                if f.record_type == CheckpointEnd::RECORD_TYPE {
                    let end = CheckpointEnd::from_bytes(f.payload).unwrap();
                    assert_eq!(end.checkpoint_id, written.checkpoint_id);
                    end_records = Some(end.records);
                }
            })
            .unwrap();
        assert!(
            polled.frames > 0,
            "checkpoint {} has no end",
            written.checkpoint_id
        );
    }
    (frames, end_records.unwrap())
}

/// Frames from `position` to the journal's end.
fn frames_from(dir: &Path, position: Position) -> usize {
    let mut tailer = Tailer::open(dir, StartAt::Position(position)).unwrap();
    let mut frames = 0;
    loop {
        match tailer.poll(4096, |_| {}).unwrap().frames {
            0 => return frames,
            n => frames += n,
        }
    }
}

/// The position after the journal's last frame.
fn journal_end(dir: &Path) -> Position {
    Tailer::open(dir, StartAt::End).unwrap().position()
}

/// The daemon's start: recover, start the shadow, checkpoint at once.
fn start_shadow(
    run: &mut Run,
    dir: &Path,
    limits: RiskLimits,
    instruments: &InstrumentTable,
) -> (ShadowRecovery, CheckpointWritten) {
    let rec = recover(dir, limits, instruments).unwrap();
    let mut shadow = ShadowRecovery::start(&run.journal, limits, instruments, &rec).unwrap();
    let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
    assert_eq!(written.replay_from, rec.end);
    (shadow, written)
}

/// A shadow started as the daemon starts one: from the recovery of `journal` as it is now.
fn shadow_from_recovery(
    journal: &Journal,
    limits: RiskLimits,
    instruments: &InstrumentTable,
) -> ShadowRecovery {
    let rec = recover(journal.dir(), limits, instruments).unwrap();
    ShadowRecovery::start(journal, limits, instruments, &rec).unwrap()
}

/// Checkpoints written while the pipeline trades, with the shadow caught up or lagging by a
/// random number of frames (so P falls anywhere: between an order and its reports, in the
/// middle of a replace): recovery from each, at once, gives what the full replay gives; and
/// after the crash, the live engine's state.
#[test]
fn checkpoints_at_random_moments_recover_what_a_full_replay_recovers() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let (mut lagging, mut with_orders) = (0, 0);
    for attempt in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let venue = VenueState::new(rng.u64(..), instrument.lot_units);
        let mut run = start_run(dir.path(), dir.path(), 0, rng.u64(..), 0, &venue, 1, None);
        let (mut shadow, written) = start_shadow(&mut run, dir.path(), limits, &instruments);
        let ctx = format!("seed {seed}, attempt {attempt}, at start-up");
        assert_checkpoint_recovers(
            dir.path(),
            &written,
            limits,
            &instruments,
            instrument.id,
            &ctx,
        );
        let mut pause_at = 0;
        let mut last_id = written.checkpoint_id;
        for moment in 0..6 {
            pause_at += rng.u64(500..MESSAGES / 6);
            run.pipeline.feed.source_mut().pause_at = pause_at;
            run.run_to_gate(seed);
            let behind = frames_from(dir.path(), shadow.position());
            if rng.bool() {
                let applied = shadow.catch_up_frames(rng.usize(..behind.max(1))).unwrap();
                assert!(applied < behind, "seed {seed}");
            } else {
                while shadow.catch_up().unwrap() == CATCH_UP_FRAMES_MAX {}
            }
            let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
            // Each checkpoint takes the next id: a cut-off one is never confused with it.
            assert_eq!(written.checkpoint_id, last_id + 1, "seed {seed}");
            last_id = written.checkpoint_id;
            lagging += usize::from(written.replay_from < written.begin);
            let ctx = format!(
                "seed {seed}, attempt {attempt}, moment {moment} (after {pause_at} messages), \
                 checkpoint {} replaying from {}",
                written.checkpoint_id, written.replay_from
            );
            let rec = assert_checkpoint_recovers(
                dir.path(),
                &written,
                limits,
                &instruments,
                instrument.id,
                &ctx,
            );
            with_orders += usize::from(!rec.state().orders.is_empty());
        }
        // The crash: recovery from the last checkpoint is the live state.
        run.run_until_unanswered(&venue, seed);
        run.freeze_and_drain(&venue, seed);
        let behind = frames_from(dir.path(), shadow.position());
        shadow.catch_up_frames(rng.usize(..behind.max(1))).unwrap();
        let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
        let ctx = format!("seed {seed}, attempt {attempt}, after the crash");
        let rec = assert_checkpoint_recovers(
            dir.path(),
            &written,
            limits,
            &instruments,
            instrument.id,
            &ctx,
        );
        eprintln!("{ctx}: {}", describe(&rec));
        assert_recovered(run.live(), &rec, dir.path(), instrument.id, &ctx);
    }
    assert!(
        lagging > 0 && with_orders > 0,
        "seed {seed}: {lagging} checkpoints lagged the journal, {with_orders} held open \
         orders: the test proved little"
    );
}

/// Hard-links every raw segment of `dir` into `backup` (once): a copy of the whole journal
/// that pruning and compression in `dir` do not touch.
fn keep_segments(dir: &Path, backup: &Path) {
    for s in list_segments(dir).unwrap() {
        let to = backup.join(segment_file_name(s.index));
        if !s.compressed && !to.exists() {
            std::fs::hard_link(&s.path, &to).unwrap();
        }
    }
}

/// Tiny segments, compressed and pruned by the journal's own maintenance while the pipeline
/// trades and the shadow checkpoints: segment 0 and many after it are gone, the last
/// checkpoint's P lies in an earlier segment than its records (and is compressed by then),
/// and recovery gives exactly what a full replay of the whole journal (kept aside) gives, and
/// the live engine's state.
#[test]
fn segments_pruned_before_the_checkpoint_recover_the_exact_state() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let counters = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        dir: dir.path().to_owned(),
        segment_size: SEGMENT_SIZE_MIN,
        prefault: false,
        retention: RetentionPolicy {
            compress: true,
            raw_segments_kept: 1,
            max_age: None,
            max_total_bytes: Some(12 * SEGMENT_SIZE_MIN as u64),
            archive: None,
        },
    };
    let segment_of = |p: Position| p.split(SEGMENT_SIZE_MIN).0;
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);
    let mut run = start_run_in(&config, counters.path(), 0, rng.u64(..), 0, &venue, 1, None);
    let (mut shadow, _) = start_shadow(&mut run, dir.path(), limits, &instruments);
    let mut pruned = 0;
    let mut pause_at = 0;
    while pause_at < MESSAGES - 4_000 {
        pause_at += rng.u64(200..2_000);
        run.pipeline.feed.source_mut().pause_at = pause_at;
        run.run_to_gate(seed);
        while shadow.catch_up().unwrap() == CATCH_UP_FRAMES_MAX {}
        if rng.u8(..3) == 0 {
            shadow.write_checkpoint(&mut run.daemon).unwrap();
        }
        keep_segments(dir.path(), backup.path());
        pruned += run.journal.maintain().unwrap().pruned.len();
    }
    // The last stretch without catching up; then the shadow goes on to two segments before
    // the end only.
    run.pipeline.feed.source_mut().pause_at = pause_at + 2_000;
    run.run_until_unanswered(&venue, seed);
    run.freeze_and_drain(&venue, seed);
    let end = segment_of(journal_end(dir.path()));
    while segment_of(shadow.position()) + 2 < end {
        assert!(shadow.catch_up_frames(16).unwrap() > 0, "seed {seed}");
    }
    let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
    assert!(
        segment_of(written.replay_from) < segment_of(written.begin),
        "seed {seed}: {written:?}"
    );
    keep_segments(dir.path(), backup.path());
    pruned += run.journal.maintain().unwrap().pruned.len();
    let listing = list_segments(dir.path()).unwrap();
    let ctx = format!(
        "seed {seed}: {pruned} segments pruned, {} left, checkpoint {} replaying from {} \
         (segment {}), written in segment {}",
        listing.len(),
        written.checkpoint_id,
        written.replay_from,
        segment_of(written.replay_from),
        segment_of(written.begin)
    );
    assert!(pruned > 0 && listing[0].index > 0, "{ctx}");
    assert!(
        listing
            .iter()
            .any(|s| s.index == segment_of(written.replay_from) && s.compressed),
        "{ctx}: P's segment is compressed"
    );

    let full = recover_from_start(backup.path(), limits, &instruments).unwrap();
    assert_recovered(run.live(), &full, backup.path(), instrument.id, &ctx);
    let rec = recover(dir.path(), limits, &instruments).unwrap();
    eprintln!("{ctx}: {}", describe(&rec));
    assert_eq!(
        rec.checkpoint.map(|c| (c.checkpoint_id, c.replay_from)),
        Some((written.checkpoint_id, written.replay_from)),
        "{ctx}"
    );
    assert_same_recovery(&rec, &full, instrument.id, &ctx);
    let e = recover_from_start(dir.path(), limits, &instruments).unwrap_err();
    assert!(matches!(e, RecoveryError::Pruned { .. }), "{ctx}: {e}");
}

/// Appends `checkpoint`'s records; `edit` may change one (`Some(bytes)`), drop it (`Some` of
/// nothing) or keep it (`None`); `writer` takes the record's index and says which appender.
fn append_checkpoint(
    appenders: &mut [&mut Appender],
    checkpoint: &Checkpoint,
    mut choose: impl FnMut(usize, RecordType) -> Option<usize>,
    mut edit: impl FnMut(RecordType, &[u8]) -> Option<Vec<u8>>,
) {
    let mut k = 0;
    checkpoint
        .for_each_record(|record_type, bytes| {
            let writer = choose(k, record_type);
            k += 1;
            let Some(writer) = writer else {
                return Ok::<(), ()>(());
            };
            let bytes = edit(record_type, bytes).unwrap_or_else(|| bytes.to_vec());
            appenders[writer].append(record_type, &bytes).unwrap();
            Ok(())
        })
        .unwrap();
}

/// A checkpoint whose end never came (a crash while writing it), whose end counts other
/// records than came, or some of whose records another writer wrote, is ignored: recovery
/// takes the complete one before it, or replays from the start if there is none; a complete
/// one after them is taken.
#[test]
fn a_checkpoint_cut_off_before_its_end_is_ignored() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);
    let mut run = start_run(dir.path(), dir.path(), 0, rng.u64(..), 0, &venue, 1, None);
    let mut other = run.journal.appender(7).unwrap();
    let used = |dir: &Path| {
        let rec = recover(dir, limits, &instruments).unwrap();
        let full = recover_from_start(dir, limits, &instruments).unwrap();
        assert_same_recovery(&rec, &full, instrument.id, &format!("seed {seed}"));
        rec.checkpoint.map(|c| c.checkpoint_id)
    };
    let mut pause_at = rng.u64(1_000..4_000);
    let mut trade = |run: &mut Run, rng: &mut fastrand::Rng| {
        pause_at += rng.u64(1_000..4_000);
        run.pipeline.feed.source_mut().pause_at = pause_at;
        run.run_to_gate(seed);
    };
    // A real state as of now, as a checkpoint with id `id` would carry it.
    let forged = |id: u64| {
        let now = recover_from_start(dir.path(), limits, &instruments).unwrap();
        let mut checkpoint = now.state().clone();
        checkpoint.set_id(id);
        checkpoint
    };
    let all = |_: usize, _: RecordType| Some(0);
    let keep = |_: RecordType, _: &[u8]| None;

    // Only a cut-off one: the full replay.
    trade(&mut run, &mut rng);
    let cut = forged(50);
    let body = cut.body_records() as usize;
    let half = |k: usize, _: RecordType| (k <= body / 2).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &cut, half, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), None, "seed {seed}");

    // A complete one.
    trade(&mut run, &mut rng);
    append_checkpoint(&mut [&mut run.daemon], &forged(60), all, keep);
    assert_eq!(used(dir.path()), Some(60), "seed {seed}");

    // Cut off before its end, after all its records.
    trade(&mut run, &mut rng);
    let cut = forged(61);
    let body = cut.body_records() as usize;
    assert!(body > 2, "seed {seed}: a checkpoint of {body} records");
    // Record 0 is the begin, `body + 1` the end.
    let no_end = |k: usize, _: RecordType| (k <= body).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &cut, no_end, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), Some(60), "seed {seed}: no end");

    // An end that counts one record more than came.
    let wrong_end = |t: RecordType, bytes: &[u8]| {
        (t == record_type::CHECKPOINT_END).then(|| {
            let mut end = CheckpointEnd::from_bytes(bytes).unwrap();
            end.records += 1;
            end.to_bytes().to_vec()
        })
    };
    append_checkpoint(&mut [&mut run.daemon], &forged(62), all, wrong_end);
    assert_eq!(used(dir.path()), Some(60), "seed {seed}: wrong count");

    // One record from another writer.
    trade(&mut run, &mut rng);
    let strays = |k: usize, _: RecordType| Some(usize::from(k == 1));
    append_checkpoint(
        &mut [&mut run.daemon, &mut other],
        &forged(63),
        strays,
        keep,
    );
    assert_eq!(used(dir.path()), Some(60), "seed {seed}: a stray record");

    // A begin, then a complete one: the complete one is taken; then a cut one after it.
    trade(&mut run, &mut rng);
    let begin_only = |k: usize, _: RecordType| (k == 0).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &forged(64), begin_only, keep);
    append_checkpoint(&mut [&mut run.daemon], &forged(65), all, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), Some(65), "seed {seed}");
    let cut = forged(66);
    let body = cut.body_records() as usize;
    let half = |k: usize, _: RecordType| (k <= body / 2).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &cut, half, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), Some(65), "seed {seed}");
}

/// Hand-written runs in segments 0, 1 and 2; the shadow starts in run 1 and writes its
/// checkpoint in run 2, so P lies in segment 1 and the checkpoint in segment 2. Without
/// segment 0 recovery is exact; without segment 1 too, P is gone: `Pruned`, saying so.
#[test]
fn a_checkpoint_stands_for_pruned_segments_until_its_own_position_is_pruned() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let send = |appender: &mut Appender, id: u64| {
        let order = OrderRequest {
            instrument_id: instrument.id,
            ..new_order(
                id,
                (3_000 - id as i64) * instrument.tick_units,
                instrument.lot_units,
            )
        };
        appender
            .append(SentOrder::RECORD_TYPE, sent(order, id).to_bytes())
            .unwrap();
    };
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        send(&mut appender, 1);
    }
    let mut shadow = {
        let (journal, mut appender) = hand_journal(dir.path(), &instruments);
        send(&mut appender, 2);
        let shadow = shadow_from_recovery(&journal, limits, &instruments);
        send(&mut appender, 3);
        shadow
    };
    let written = {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        send(&mut appender, 4);
        shadow.write_checkpoint(&mut appender).unwrap()
    };
    let segment_of = |p: Position| p.split(16 << 20).0;
    assert_eq!(
        (segment_of(written.replay_from), segment_of(written.begin)),
        (1, 2)
    );
    let full = recover_from_start(dir.path(), limits, &instruments).unwrap();
    assert_eq!(full.open_orders.len(), 4);

    let segment = |i: u64| dir.path().join(segment_file_name(i));
    // A hole (segment 1 gone, segment 0 still there) is damage, not pruning: an error that
    // names the missing segment.
    let aside = dir.path().join("aside");
    std::fs::rename(segment(1), &aside).unwrap();
    let e = recover(dir.path(), limits, &instruments).unwrap_err();
    assert!(!matches!(e, RecoveryError::Pruned { .. }), "{e:?}");
    assert!(e.to_string().contains("segment 1"), "{e}");
    std::fs::rename(&aside, segment(1)).unwrap();

    std::fs::remove_file(segment(0)).unwrap();
    let rec = recover(dir.path(), limits, &instruments).unwrap();
    assert_eq!(
        rec.checkpoint.map(|c| c.replay_from),
        Some(written.replay_from)
    );
    assert_same_recovery(&rec, &full, instrument.id, "segment 0 pruned");
    assert_eq!((rec.runs, rec.next_client_order_id), (3, 5));
    assert_eq!(rec.seq_nums.map(|s| s.next_sender), Some(5));

    std::fs::remove_file(segment(1)).unwrap();
    let e = recover(dir.path(), limits, &instruments).unwrap_err();
    assert!(
        matches!(e, RecoveryError::Pruned { first: 2, replay_from: Some(p), .. } if p == written.replay_from),
        "{e:?}"
    );
    assert!(e.to_string().contains("which was pruned too"), "{e}");
}

/// A checkpoint carries its instruments' definitions: with every definition of its run pruned,
/// a configuration with another instrument at an id is still refused.
#[test]
fn a_checkpoint_is_refused_by_a_configuration_with_other_instruments() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    {
        let mut shadow = {
            let (first, _appender) = hand_journal(dir.path(), &instruments);
            shadow_from_recovery(&first, limits, &instruments)
        };
        // The next run's segment holds the checkpoint and no definitions.
        let second = journal(dir.path());
        let mut appender = second.appender(writer_id::DAEMON).unwrap();
        shadow.catch_up().unwrap();
        shadow.write_checkpoint(&mut appender).unwrap();
    }
    std::fs::remove_file(dir.path().join(segment_file_name(0))).unwrap();
    assert!(recover(dir.path(), limits, &instruments).is_ok());
    // The traded instrument's id now names the other one.
    let mut all: Vec<Instrument> = instruments.iter().cloned().collect();
    all.reverse();
    let swapped = InstrumentTable::new(all).unwrap();
    let e = recover(dir.path(), limits, &swapped).unwrap_err();
    assert!(
        matches!(e, RecoveryError::InstrumentMismatch { .. }),
        "{e:?}"
    );
}

/// A shadow that loses frames (a segment pruned before it read it) says so once, stops, and
/// writes no checkpoint any more.
#[test]
fn a_shadow_that_lost_frames_stops_checkpointing() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let mut shadow = {
        let (journal, _appender) = hand_journal(dir.path(), &instruments);
        shadow_from_recovery(&journal, limits, &instruments)
    };
    three_runs(dir.path(), &instruments, &instrument);
    std::fs::remove_file(dir.path().join(segment_file_name(2))).unwrap();
    let e = shadow.catch_up().unwrap_err();
    assert!(e.to_string().contains("segment 2 is missing"), "{e}");
    assert_eq!(shadow.catch_up().unwrap(), 0);
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let e = shadow.write_checkpoint(&mut appender).unwrap_err();
    assert!(matches!(e, CheckpointError::ShadowFailed(_)), "{e:?}");
    assert!(
        shadow.failed().unwrap().contains("segment 2 is missing"),
        "{:?}",
        shadow.failed()
    );
}

/// One `catch_up` applies at most 65,536 frames (64 Ki, the bound the control loop's other
/// duties wait for), and the next call takes the rest.
#[test]
fn a_catch_up_applies_at_most_64_ki_frames_and_the_next_the_rest() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut appender) = hand_journal(dir.path(), &instruments);
    let mut shadow = shadow_from_recovery(&journal, limits, &instruments);
    let behind = 65_536 + 10;
    let ticker = BookTicker {
        instrument_id: instrument.id,
        ..BookTicker::default()
    };
    for _ in 0..behind {
        appender
            .append(BookTicker::RECORD_TYPE, ticker.to_bytes())
            .unwrap();
    }
    assert_eq!(shadow.catch_up().unwrap(), 65_536);
    assert_eq!(CATCH_UP_FRAMES_MAX, 65_536);
    assert_eq!(shadow.catch_up().unwrap(), 10);
    assert_eq!(shadow.catch_up().unwrap(), 0);
}

/// What the random runs seldom hold at a checkpoint's moment, written by hand: an order
/// acknowledged, one with a cancel pending, orders awaiting a mass status answer, two
/// strategies' marks, and instruments defined but never traded. Recovery from the checkpoint
/// equals the full replay, and the checkpoint carries every definition the journal has
/// (compared with the instrument table, not with the checkpoint code's own view).
#[test]
fn a_checkpoint_keeps_cancels_status_rounds_every_strategys_mark_and_every_definition() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    assert!(
        instruments.iter().count() > 1,
        "the table has instruments risk does not trade"
    );
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut appender) = hand_journal(dir.path(), &instruments);
    let px = 3_000 * instrument.tick_units;
    let order = |id: u64, strategy_id: u16| OrderRequest {
        instrument_id: instrument.id,
        strategy_id,
        ..new_order(id, px, instrument.lot_units)
    };
    let mut seq = 0;
    let mut send = |appender: &mut Appender, request: OrderRequest| {
        seq += 1;
        appender
            .append(SentOrder::RECORD_TYPE, sent(request, seq).to_bytes())
            .unwrap();
    };
    let report = |appender: &mut Appender, id: u64, exec: u8| {
        let r = ExecutionReport {
            exec_type: exec,
            ..ack(id, &instrument, px)
        };
        appender
            .append(ExecutionReport::RECORD_TYPE, r.to_bytes())
            .unwrap();
    };
    for (id, strategy_id) in [(21, 1), (22, 1), (23, 2)] {
        send(&mut appender, order(id, strategy_id));
        report(&mut appender, id, exec_type::NEW);
    }
    send(
        &mut appender,
        OrderRequest {
            kind: order_kind::CANCEL,
            orig_client_order_id: 22,
            ..order(24, 1)
        },
    );
    send(
        &mut appender,
        OrderRequest {
            kind: order_kind::MASS_STATUS,
            instrument_id: u32::MAX,
            ..order(25, 1)
        },
    );
    // The venue's status of 21 only: 22 and 23 still await theirs.
    report(&mut appender, 21, exec_type::ORDER_STATUS);

    let rec = recover(dir.path(), limits, &instruments).unwrap();
    let open: Vec<(u64, bool, bool)> = rec
        .open_orders
        .iter()
        .map(|o| (o.client_order_id, o.acked, o.cancel_pending))
        .collect();
    assert_eq!(
        open,
        [(21, true, false), (22, true, true), (23, true, false)]
    );
    assert!(rec.engine.status_round_open());
    assert_eq!(rec.engine.next_client_order_id(2), 24);
    let mut shadow = ShadowRecovery::start(&journal, limits, &instruments, &rec).unwrap();
    let unix_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let before = unix_ns();
    let written = shadow.write_checkpoint(&mut appender).unwrap();
    let after = unix_ns();
    let with = assert_checkpoint_recovers(
        dir.path(),
        &written,
        limits,
        &instruments,
        instrument.id,
        "by hand",
    );
    let mut awaiting: Vec<u64> = with
        .engine
        .order_states()
        .filter(|o| o.awaiting_status)
        .map(|o| o.client_order_id)
        .collect();
    awaiting.sort();
    assert_eq!(awaiting, [22, 23]);

    // Every definition of the table, as the journal's records of this checkpoint carry them;
    // and the wall-clock time it was written at.
    let mut carried: Vec<(u32, String)> = Vec::new();
    let mut written_at = None;
    let mut tailer = Tailer::open(dir.path(), StartAt::Position(written.begin)).unwrap();
    while tailer
        .poll(4096, |f| {
            if f.record_type == CheckpointBegin::RECORD_TYPE {
                written_at = Some(CheckpointBegin::from_bytes(f.payload).unwrap().unix_ns);
            }
            if f.record_type == CheckpointInstrument::RECORD_TYPE {
                let r = CheckpointInstrument::from_bytes(f.payload).unwrap();
                carried.push((r.def.instrument_id, r.def.symbol().unwrap().to_owned()));
            }
        })
        .unwrap()
        .frames
        > 0
    {}
    let table: Vec<(u32, String)> = instruments
        .iter()
        .map(|i| (i.id, i.symbol.as_str().to_owned()))
        .collect();
    assert_eq!(carried, table);
    let written_at = written_at.unwrap();
    assert!(
        (before..=after).contains(&written_at),
        "{before} <= {written_at} <= {after}"
    );

    // A shadow started after a recovery takes the next id, whether that recovery used a
    // checkpoint or replayed everything.
    for (k, full_replay) in [(1, false), (2, true)] {
        let next = if full_replay {
            recover_from_start(dir.path(), limits, &instruments).unwrap()
        } else {
            recover(dir.path(), limits, &instruments).unwrap()
        };
        let mut shadow = ShadowRecovery::start(&journal, limits, &instruments, &next).unwrap();
        let again = shadow.write_checkpoint(&mut appender).unwrap();
        assert_eq!(again.checkpoint_id, written.checkpoint_id + k);
    }
}

/// An instrument risk has limits for but the instrument table lacks (limits loaded beside an
/// older table) is carried by its id, not lost or put at another: recovery from the checkpoint
/// holds its ledger where the full replay does.
#[test]
fn a_checkpoint_carries_an_instrument_only_risk_knows_by_its_id() {
    let (instruments, instrument) = corpus_instrument();
    let unlisted = Instrument {
        id: 63,
        ..instrument.clone()
    };
    assert!(instruments.get(unlisted.id).is_none());
    let limits = limits(&unlisted);
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut appender) = hand_journal(dir.path(), &instruments);
    let mut shadow = shadow_from_recovery(&journal, limits, &instruments);
    let written = shadow.write_checkpoint(&mut appender).unwrap();
    let with = assert_checkpoint_recovers(
        dir.path(),
        &written,
        limits,
        &instruments,
        unlisted.id,
        "an instrument only risk knows",
    );
    assert!(with.engine.ledger_state(unlisted.id).is_some());
    assert!(with.engine.ledger_state(instrument.id).is_none());
}

/// A checkpoint that gives an instrument without risk limits a position, open quantity or a
/// worst-case bound (corrupt, or forged) is refused, naming the instrument: recovery does not
/// guess.
#[test]
fn a_checkpoint_giving_state_to_an_instrument_without_limits_is_refused() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    for (checkpoint_id, position, open_buy_qty, worst_max) in
        [(70, 7, 0, 0), (71, 0, 0, 5), (72, 0, 3, 0)]
    {
        let dir = tempfile::tempdir().unwrap();
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        let now = recover(dir.path(), limits, &instruments).unwrap();
        let mut forged = now.state().clone();
        forged.set_id(checkpoint_id);
        let without_limits = forged
            .instruments
            .iter_mut()
            .find(|r| r.def.instrument_id != instrument.id)
            .expect("the table has instruments risk does not trade");
        without_limits.position = position;
        without_limits.open_buy_qty = open_buy_qty;
        without_limits.worst_max = worst_max;
        let id = without_limits.def.instrument_id;
        append_checkpoint(&mut [&mut appender], &forged, |_, _| Some(0), |_, _| None);
        let e = recover(dir.path(), limits, &instruments).unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains(&format!("instrument {id}")) && message.contains("no risk limits"),
            "{message}"
        );
    }
}
