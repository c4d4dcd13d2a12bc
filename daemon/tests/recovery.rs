//! Recovery after a crash (the harness: `common/crash.rs`): the real pipeline journals into a
//! directory and is stopped at a random point; the state `daemon::recovery::recover` rebuilds
//! from the journal alone equals the live risk engine's: positions, open orders (ids, sides,
//! prices, leaves), realised PnL, the trading state and the client-order-id mark, which is
//! above every id in the journal. And it equals the venue's own view, which shares no code with
//! recovery (the live engine shares `on_execution`): the position the venue filled, and every
//! order resting there open with its price, fills and leaves. A second run continues from the
//! recovered state and ids and recovers again. And the edges: a halted journal, instrument
//! definitions that disagree with the configuration, corrupt payloads, an empty or missing
//! directory, missing or pruned segments, a clean stop, a trip that a refusal journaled.

use std::path::Path;

use levibot_daemon::recovery::{Recovered, RecoveryError, WarningProblem, recover};
use levibot_engine::pipeline::TradingCommand;
use levibot_engine::risk::{RiskCheck, TradingState};
use levibot_gateway::instrument::Instrument;
use levibot_shm::codes::writer_id;
use levibot_shm::records::{
    CheckpointBegin, CheckpointEnd, CheckpointFills, CheckpointInstrument, CheckpointMarks,
    CheckpointOrder, DaemonEvent, ExecutionReport, InstrumentDef, OrderRequest, Record, RiskReject,
    SentOrder, daemon_event, exec_type, order_kind, side,
};

use crate::common::crash::*;

#[test]
fn a_crash_at_a_random_point_recovers_the_live_risk_state() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let mut any_position = false;
    let mut any_open = false;
    for attempt in 0..3 {
        let pause_at = rng.u64(500..MESSAGES);
        let ctx = format!("seed {seed}, attempt {attempt}, stopped after {pause_at} messages");
        let dir = tempfile::tempdir().unwrap();
        let venue = VenueState::new(rng.u64(..), instrument.lot_units);
        let mut run = start_run(
            dir.path(),
            dir.path(),
            0,
            rng.u64(..),
            pause_at,
            &venue,
            1,
            None,
        );
        run.run_until_unanswered(&venue, seed);
        run.freeze_and_drain(&venue, seed);
        let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
        eprintln!("{ctx}: {}", describe(&rec));
        assert_recovered(run.live(), &rec, dir.path(), instrument.id, &ctx);
        assert_matches_venue(&rec, &venue.lock().unwrap(), instrument.id, &ctx);
        assert_eq!(
            rec.engine.next_client_order_id(1),
            run.live().next_client_order_id(1),
            "{ctx}: no mass cancel: the same mark"
        );
        assert_eq!(rec.runs, 1, "{ctx}");
        assert!(rec.orders_sent > 0, "{ctx}: the maker sent nothing");
        any_position |= !rec.positions.is_empty();
        any_open |= !rec.open_orders.is_empty();
    }
    assert!(
        any_position && any_open,
        "seed {seed}: no position or no open order in any attempt: the test proved little"
    );
}

#[test]
fn a_second_run_continues_from_the_recovered_state_and_recovers_again() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let counters_dir = tempfile::tempdir().unwrap();
    // The venue outlives the runs: what the first sent and it never answered, it answers to the
    // second (as a FIX venue resends the reports a client missed).
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);

    let pause_at = rng.u64(2_000..MESSAGES);
    let mut first = start_run(
        dir.path(),
        counters_dir.path(),
        1,
        rng.u64(..),
        pause_at,
        &venue,
        1,
        None,
    );
    first.run_until_unanswered(&venue, seed);
    first.freeze_and_drain(&venue, seed);
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let ctx = format!("seed {seed}, first run");
    eprintln!("{ctx}: {}", describe(&rec));
    assert_recovered(first.live(), &rec, dir.path(), instrument.id, &ctx);
    assert_matches_venue(&rec, &venue.lock().unwrap(), instrument.id, &ctx);
    let first_ids_max = read_journal(dir.path()).id_max;
    drop(first);

    // The second run: the recovered engine, ids and sequence numbers.
    {
        let mut v = venue.lock().unwrap();
        v.frozen = false;
        assert_eq!(
            Some(v.next_msg_seq_num),
            rec.seq_nums.map(|s| s.next_sender),
            "seed {seed}: the venue's next sequence number is the recovered one"
        );
    }
    let pause_at = rng.u64(2_000..MESSAGES);
    let next_id = rec.next_client_order_id;
    let mut second = start_run(
        dir.path(),
        counters_dir.path(),
        2,
        rng.u64(..),
        pause_at,
        &venue,
        next_id,
        Some(rec.engine),
    );
    second.run_until_unanswered(&venue, seed);
    second.freeze_and_drain(&venue, seed);
    assert_eq!(
        second.live().rejects_of(RiskCheck::DuplicateClientOrderId),
        0,
        "seed {seed}: the second run reused no id"
    );
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let ctx = format!("seed {seed}, second run");
    eprintln!("{ctx}: {}", describe(&rec));
    assert_recovered(second.live(), &rec, dir.path(), instrument.id, &ctx);
    assert_matches_venue(&rec, &venue.lock().unwrap(), instrument.id, &ctx);
    assert_eq!(rec.runs, 2, "{ctx}");
    assert!(
        rec.next_client_order_id > first_ids_max + 1,
        "{ctx}: the second run sent nothing"
    );
}

#[test]
fn a_halted_journal_recovers_halted() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);
    let pause_at = rng.u64(1_000..MESSAGES / 2);
    let mut run = start_run(
        dir.path(),
        dir.path(),
        0,
        rng.u64(..),
        pause_at,
        &venue,
        1,
        None,
    );
    run.run_to_gate(seed);
    // The kill switch, as the daemon does it: the command, and the event in the journal.
    assert!(run.controls.trading.send(TradingCommand::HaltAndCancelAll));
    run.daemon
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 2).to_bytes(),
        )
        .unwrap();
    run.pipeline.feed.source_mut().pause_at = pause_at + 1_000;
    run.run_to_gate(seed);
    run.freeze_and_drain(&venue, seed);
    assert_eq!(run.live().trading_state(), TradingState::Halted);
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let ctx = format!("seed {seed}, halted after {pause_at} messages");
    eprintln!("{ctx}: {}", describe(&rec));
    assert_recovered(run.live(), &rec, dir.path(), instrument.id, &ctx);
    assert_eq!(rec.trading_state, TradingState::Halted);

    // Resumed later: active again.
    run.daemon
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 0).to_bytes(),
        )
        .unwrap();
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!(rec.trading_state, TradingState::Active, "{ctx}");
}

#[test]
fn instrument_definitions_that_disagree_with_the_config_are_refused_naming_the_id() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let other = instruments
        .iter()
        .find(|i| i.id != instrument.id)
        .expect("the corpus has two instruments")
        .clone();
    let refusal = |def: InstrumentDef| {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(dir.path());
        let mut appender = journal.appender(writer_id::DAEMON).unwrap();
        appender
            .append(InstrumentDef::RECORD_TYPE, def.to_bytes())
            .unwrap();
        match recover(dir.path(), limits, &instruments) {
            Err(e @ RecoveryError::InstrumentMismatch { .. }) => e,
            other => panic!("not refused: {other:?}"),
        }
    };
    let scales = |i: &Instrument| {
        (
            (i.price_scale.mantissa, i.price_scale.exp),
            (i.qty_scale.mantissa, i.qty_scale.exp),
        )
    };
    // Another symbol at the traded instrument's id.
    let (price, qty) = scales(&other);
    let e = refusal(InstrumentDef::new(instrument.id, other.symbol.as_str(), price, qty).unwrap());
    let text = e.to_string();
    assert!(
        matches!(e, RecoveryError::InstrumentMismatch { instrument_id, .. } if instrument_id == instrument.id)
    );
    assert!(
        text.contains(&format!("instrument id {}", instrument.id))
            && text.contains(other.symbol.as_str())
            && text.contains(instrument.symbol.as_str()),
        "{text}"
    );
    // The same symbol in other units.
    let (_, qty) = scales(&instrument);
    let e = refusal(
        InstrumentDef::new(instrument.id, instrument.symbol.as_str(), (1, 2), qty).unwrap(),
    );
    assert!(e.to_string().contains("1e-2"), "{e}");
    // An id the configuration does not have.
    let missing = instruments.len() as u32;
    let e = refusal(InstrumentDef::new(missing, "XYZUSDT", (1, 8), (1, 8)).unwrap());
    let text = e.to_string();
    assert!(text.contains(&format!("instrument id {missing}")) && text.contains("XYZUSDT"));
    assert!(text.contains("nothing"), "{text}");
    // The configuration's own definitions pass, in any case.
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let (price, qty) = scales(&instrument);
    let lower = instrument.symbol.as_str().to_ascii_lowercase();
    let def = InstrumentDef::new(instrument.id, &lower, price, qty).unwrap();
    appender
        .append(InstrumentDef::RECORD_TYPE, def.to_bytes())
        .unwrap();
    assert!(recover(dir.path(), limits, &instruments).is_ok());
}

#[test]
fn corrupt_payloads_are_counted_and_skipped() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut appender) = hand_journal(dir.path(), &instruments);
    let id = instrument.id;
    let order = OrderRequest {
        instrument_id: id,
        ..new_order(5, 3_000 * instrument.tick_units, 100 * instrument.lot_units)
    };
    appender
        .append(SentOrder::RECORD_TYPE, sent(order, 1).to_bytes())
        .unwrap();
    // A fill of it, cut one byte short; a sent order one byte short; a nonsense state.
    let fill = ExecutionReport {
        client_order_id: 5,
        instrument_id: id,
        exec_type: exec_type::TRADE,
        last_px: order.px,
        last_qty: order.qty,
        side: side::BUY,
        ..ExecutionReport::default()
    };
    let cut = &fill.to_bytes()[..size_of::<ExecutionReport>() - 1];
    let first_bad = appender.append(ExecutionReport::RECORD_TYPE, cut).unwrap();
    let second = sent(
        OrderRequest {
            instrument_id: id,
            ..new_order(6, order.px, order.qty)
        },
        2,
    );
    appender
        .append(SentOrder::RECORD_TYPE, &second.to_bytes()[..100])
        .unwrap();
    appender
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 7).to_bytes(),
        )
        .unwrap();
    let mut bad_def = InstrumentDef::new(id, instrument.symbol.as_str(), (1, 8), (1, 8)).unwrap();
    bad_def.symbol_len = 200;
    appender
        .append(InstrumentDef::RECORD_TYPE, bad_def.to_bytes())
        .unwrap();
    // Checkpoint records of every kind, each one byte short.
    let checkpoint_kinds = [
        (CheckpointBegin::RECORD_TYPE, size_of::<CheckpointBegin>()),
        (
            CheckpointInstrument::RECORD_TYPE,
            size_of::<CheckpointInstrument>(),
        ),
        (CheckpointOrder::RECORD_TYPE, size_of::<CheckpointOrder>()),
        (CheckpointMarks::RECORD_TYPE, size_of::<CheckpointMarks>()),
        (CheckpointFills::RECORD_TYPE, size_of::<CheckpointFills>()),
        (CheckpointEnd::RECORD_TYPE, size_of::<CheckpointEnd>()),
    ];
    for (record_type, len) in checkpoint_kinds {
        appender.append(record_type, &vec![0; len - 1]).unwrap();
    }
    drop(appender);
    drop(journal);

    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!(rec.skipped, 4 + checkpoint_kinds.len() as u64);
    let problems: Vec<WarningProblem> = rec.warnings.iter().map(|w| w.problem).collect();
    assert_eq!(
        problems,
        [
            WarningProblem::PayloadLen {
                len: size_of::<ExecutionReport>() - 1,
                expected: size_of::<ExecutionReport>()
            },
            WarningProblem::PayloadLen {
                len: 100,
                expected: size_of::<SentOrder>()
            },
            WarningProblem::UnknownTradingState(7),
            WarningProblem::CorruptSymbol,
        ]
        .into_iter()
        .chain(
            checkpoint_kinds
                .iter()
                .map(|&(_, len)| WarningProblem::PayloadLen {
                    len: len - 1,
                    expected: len
                })
        )
        .collect::<Vec<_>>()
    );
    assert_eq!(rec.warnings[0].position, first_bad);
    let text = rec.warnings[0].to_string();
    assert!(
        text.contains("journal-") && text.contains("79 bytes"),
        "{text}"
    );
    // What was whole is there: order 5 open and unfilled; order 6's id unseen.
    assert_eq!(rec.open_orders.len(), 1);
    assert_eq!(
        (
            rec.open_orders[0].client_order_id,
            rec.open_orders[0].leaves_qty
        ),
        (5, order.qty)
    );
    assert!(rec.positions.is_empty());
    assert_eq!((rec.orders_sent, rec.reports), (1, 0));
    assert_eq!(rec.next_client_order_id, 6);
    assert_eq!(rec.trading_state, TradingState::Active);
}

#[test]
fn an_empty_or_missing_directory_is_no_journal_and_a_fresh_engine() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let fresh = |rec: &Recovered| {
        assert!(!rec.found_journal);
        assert_eq!(rec.next_client_order_id, 1);
        assert_eq!(rec.seq_nums, None);
        assert_eq!(rec.trading_state, TradingState::Active);
        assert!(rec.open_orders.is_empty() && rec.positions.is_empty());
        assert_eq!(
            (rec.orders_sent, rec.reports, rec.runs, rec.frames),
            (0, 0, 0, 0)
        );
        assert_eq!(rec.engine.open_orders(), 0);
        assert!(!rec.was_clean_stop);
    };
    fresh(&recover(dir.path(), limits(&instrument), &instruments).unwrap());
    fresh(
        &recover(
            &dir.path().join("nothing"),
            limits(&instrument),
            &instruments,
        )
        .unwrap(),
    );
    // Only the empty segment a new run's `Journal::open` makes.
    let journal = journal(dir.path());
    fresh(&recover(dir.path(), limits(&instrument), &instruments).unwrap());
    drop(journal);
    // A path that is there but cannot be read as a directory is an error naming it, never "no
    // journal" (a fresh engine would trade on a state nobody vouched for).
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let e = recover(&file, limits(&instrument), &instruments).unwrap_err();
    assert!(e.to_string().contains("not-a-directory"), "{e}");
}

#[test]
fn a_missing_or_pruned_segment_fails_recovery() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    three_runs(dir.path(), &instruments, &instrument);
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!((rec.runs, rec.open_orders.len()), (3, 3));
    assert_eq!(rec.next_client_order_id, 4);
    assert_eq!(rec.seq_nums.map(|s| s.next_sender), Some(4));

    let segment = |i: u64| dir.path().join(format!("journal-{i:010}.lvj"));
    std::fs::remove_file(segment(1)).unwrap();
    let e = recover(dir.path(), limits(&instrument), &instruments).unwrap_err();
    assert!(matches!(e, RecoveryError::Journal { .. }), "{e:?}");
    assert!(e.to_string().contains("segment 1 is missing"), "{e}");

    std::fs::remove_file(segment(0)).unwrap();
    let e = recover(dir.path(), limits(&instrument), &instruments).unwrap_err();
    assert!(
        matches!(
            e,
            RecoveryError::Pruned {
                first: 2,
                replay_from: None,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("segments 0..2 were pruned") && text.contains("no complete checkpoint"),
        "{text}"
    );
}

#[test]
fn recent_orders_the_venue_answered_are_told_from_unanswered_ones() {
    // A restarted FIX session reports lost only orders the venue never answered; recovery
    // says which of the recent ones it did (a report naming them is in the journal).
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        let px = 3_000 * instrument.tick_units;
        for (id, seq) in [(11, 5), (12, 6), (13, 7)] {
            let order = OrderRequest {
                instrument_id: instrument.id,
                ..new_order(id, px, instrument.lot_units)
            };
            appender
                .append(SentOrder::RECORD_TYPE, sent(order, seq).to_bytes())
                .unwrap();
        }
        // The venue acknowledged 11 and 13; 12 was journaled and never answered.
        for id in [11, 13] {
            appender
                .append(
                    ExecutionReport::RECORD_TYPE,
                    ack(id, &instrument, px).to_bytes(),
                )
                .unwrap();
        }
    }
    let recovered = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let sent_ids: Vec<u64> = recovered
        .recent_sent
        .iter()
        .map(|(_, o)| o.client_order_id)
        .collect();
    assert_eq!(sent_ids, [11, 12, 13]);
    assert_eq!(recovered.recent_answered, [11, 13]);
}

#[test]
fn a_clean_stop_is_told_from_a_crash() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let stopped = |dir: &Path| {
        recover(dir, limits(&instrument), &instruments)
            .unwrap()
            .was_clean_stop
    };
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        for kind in [
            daemon_event::STARTED,
            daemon_event::STOPPING,
            daemon_event::STOPPED,
        ] {
            appender
                .append(DaemonEvent::RECORD_TYPE, event(kind, 0).to_bytes())
                .unwrap();
        }
    }
    assert!(stopped(dir.path()));
    // The next run started and died.
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        appender
            .append(
                DaemonEvent::RECORD_TYPE,
                event(daemon_event::STARTED, 1).to_bytes(),
            )
            .unwrap();
    }
    assert!(!stopped(dir.path()));
    // Orders after a STOPPED: not the end of a run.
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        appender
            .append(
                DaemonEvent::RECORD_TYPE,
                event(daemon_event::STOPPED, 0).to_bytes(),
            )
            .unwrap();
        let order = OrderRequest {
            instrument_id: instrument.id,
            ..new_order(9, 3_000 * instrument.tick_units, instrument.lot_units)
        };
        appender
            .append(OrderRequest::RECORD_TYPE, order.to_bytes())
            .unwrap();
    }
    assert!(!stopped(dir.path()));
}

#[test]
fn a_trip_journaled_by_a_refusal_holds_until_resumed() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let state = |dir: &Path| recover(dir, limits, &instruments).unwrap().trading_state;
    // The first order refused after the engine tripped on its loss limit says so.
    let refusal = RiskReject {
        request: OrderRequest {
            instrument_id: instrument.id,
            ..new_order(3, 3_000 * instrument.tick_units, instrument.lot_units)
        },
        check: RiskCheck::MaxLoss.code(),
        ..RiskReject::default()
    };
    appender
        .append(RiskReject::RECORD_TYPE, refusal.to_bytes())
        .unwrap();
    assert_eq!(state(dir.path()), limits.loss_state);
    let repeated = RiskReject {
        check: RiskCheck::RepeatedExecution.code(),
        ..refusal
    };
    appender
        .append(RiskReject::RECORD_TYPE, repeated.to_bytes())
        .unwrap();
    assert_eq!(state(dir.path()), TradingState::Halted);
    // The operator resumed.
    appender
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 0).to_bytes(),
        )
        .unwrap();
    assert_eq!(state(dir.path()), TradingState::Active);
    assert_eq!(
        recover(dir.path(), limits, &instruments)
            .unwrap()
            .next_client_order_id,
        4
    );
}

/// A loss trip that a refusal already reported is not reported again after a restart: the
/// replay trips where the live engine tripped (on the losing fill), and the journaled refusal
/// that carried the trip's code clears it as the live refusal did. Without that refusal the
/// trip stays pending, for the first refusal after the restart to report.
#[test]
fn a_trip_a_refusal_reported_is_not_pending_after_recovery() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    // 10,000 NKN bought at 0.35 USDT and sold at 0.20: 1,500 USDT lost, over the 1,000 limit.
    let qty = 10_000 * 100_000_000 / instrument.qty_scale.mantissa as i64;
    let px = |usdt_cents: i64| usdt_cents * 1_000_000 / instrument.price_scale.mantissa as i64;
    let mut seq = 0;
    for (id, order_side, price) in [(1, side::BUY, px(35)), (2, side::SELL, px(20))] {
        seq += 1;
        let order = OrderRequest {
            instrument_id: instrument.id,
            side: order_side,
            ..new_order(id, price, qty)
        };
        appender
            .append(SentOrder::RECORD_TYPE, sent(order, seq).to_bytes())
            .unwrap();
        let fill = ExecutionReport {
            client_order_id: id,
            instrument_id: instrument.id,
            exec_type: exec_type::TRADE,
            ord_status: b'2',
            side: order_side,
            px: price,
            last_px: price,
            last_qty: qty,
            cum_qty: qty,
            ..ExecutionReport::default()
        };
        appender
            .append(ExecutionReport::RECORD_TYPE, fill.to_bytes())
            .unwrap();
    }
    let tripped = recover(dir.path(), limits, &instruments).unwrap();
    assert_eq!(tripped.trading_state, limits.loss_state);
    assert_eq!(tripped.engine.pending_trip(), Some(RiskCheck::MaxLoss));

    let refusal = RiskReject {
        request: OrderRequest {
            instrument_id: instrument.id,
            ..new_order(3, px(20), qty)
        },
        check: RiskCheck::MaxLoss.code(),
        ..RiskReject::default()
    };
    appender
        .append(RiskReject::RECORD_TYPE, refusal.to_bytes())
        .unwrap();
    let reported = recover(dir.path(), limits, &instruments).unwrap();
    assert_eq!(reported.trading_state, limits.loss_state);
    assert_eq!(reported.engine.pending_trip(), None);
}

/// A cancel or replace whose order is no longer open (filled or gone before it was sent) is
/// counted, not an error: one each.
#[test]
fn cancels_and_replaces_of_orders_no_longer_open_are_counted() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let px = 3_000 * instrument.tick_units;
    for (seq, kind) in [(1, order_kind::CANCEL), (2, order_kind::REPLACE)] {
        let request = OrderRequest {
            instrument_id: instrument.id,
            kind,
            orig_client_order_id: 40,
            ..new_order(40 + seq, px, instrument.lot_units)
        };
        appender
            .append(SentOrder::RECORD_TYPE, sent(request, seq).to_bytes())
            .unwrap();
    }
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!((rec.targets_gone, rec.orders_sent), (2, 2));
    assert!(rec.open_orders.is_empty());
}

/// What the replay keeps for a checkpoint, by hand: the stamps of the last 1,024 fills (the
/// repeated-execution window: 1,030 fills keep 1,024), and the worst-case bound an order
/// restored beyond the position limit raised.
#[test]
fn recovery_keeps_the_last_1024_fill_stamps_and_the_bound_a_large_order_raised() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let position_max = limits.instruments[instrument.id as usize]
        .unwrap()
        .position_max_units;
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let lot = instrument.lot_units;
    let qty = position_max + 1_030 * lot;
    let px = 3_000 * instrument.tick_units;
    let worst_max = |rec: &Recovered| {
        rec.state()
            .instruments
            .iter()
            .find(|r| r.def.instrument_id == instrument.id)
            .unwrap()
            .worst_max
    };
    // An order within the limits raises no bound: nothing for a checkpoint to carry.
    let small = OrderRequest {
        instrument_id: instrument.id,
        ..new_order(1, px, lot)
    };
    appender
        .append(SentOrder::RECORD_TYPE, sent(small, 1).to_bytes())
        .unwrap();
    assert_eq!(
        worst_max(&recover(dir.path(), limits, &instruments).unwrap()),
        0
    );
    let order = OrderRequest {
        instrument_id: instrument.id,
        ..new_order(2, px, qty)
    };
    appender
        .append(SentOrder::RECORD_TYPE, sent(order, 2).to_bytes())
        .unwrap();
    for k in 1..=1_030 {
        let fill = ExecutionReport {
            client_order_id: 2,
            instrument_id: instrument.id,
            exec_type: exec_type::TRADE,
            ord_status: b'1',
            side: side::BUY,
            px,
            last_px: px,
            last_qty: lot,
            cum_qty: k * lot,
            leaves_qty: qty - k * lot,
            ..ExecutionReport::default()
        };
        appender
            .append(ExecutionReport::RECORD_TYPE, fill.to_bytes())
            .unwrap();
    }
    let rec = recover(dir.path(), limits, &instruments).unwrap();
    let stamps: usize = rec.state().fills.iter().map(|r| r.used().len()).sum();
    assert_eq!(stamps, 1_024);
    assert_eq!(worst_max(&rec), qty + lot);
    assert_eq!(rec.positions, [(instrument.id, 1_030 * lot)]);
}

/// Only the daemon's "no answer in time" (a `MASS_STATUS` event of -1) abandons an open status
/// round. Another event of -1 does not, nor does a finished round's event (0 or more) that
/// lands after the next round opened.
#[test]
fn only_a_status_rounds_timeout_event_abandons_it() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let order = OrderRequest {
        instrument_id: instrument.id,
        ..new_order(1, 3_000 * instrument.tick_units, instrument.lot_units)
    };
    let round = OrderRequest {
        kind: order_kind::MASS_STATUS,
        instrument_id: u32::MAX,
        ..new_order(2, 0, 0)
    };
    for (seq, request) in [(1, order), (2, round)] {
        appender
            .append(SentOrder::RECORD_TYPE, sent(request, seq).to_bytes())
            .unwrap();
    }
    let open = |dir: &Path| {
        let rec = recover(dir, limits, &instruments).unwrap();
        let awaiting = rec
            .engine
            .order_states()
            .filter(|o| o.awaiting_status)
            .count();
        (rec.engine.status_round_open(), awaiting)
    };
    assert_eq!(open(dir.path()), (true, 1));
    for (kind, value) in [
        (daemon_event::RECONCILED, -1),
        (daemon_event::CANCEL_ALL_DONE, -1),
        (daemon_event::MASS_STATUS, 0),
        (daemon_event::MASS_STATUS, 3),
    ] {
        appender
            .append(DaemonEvent::RECORD_TYPE, event(kind, value).to_bytes())
            .unwrap();
        assert_eq!(open(dir.path()), (true, 1), "after event {kind} of {value}");
    }
    appender
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::MASS_STATUS, -1).to_bytes(),
        )
        .unwrap();
    assert_eq!(open(dir.path()), (false, 0));
}

/// Each trading state an event journals is recovered as such (0 active, 1 reduce-only, 2
/// halted); another value is skipped with a warning, and the warnings kept stop at 64 while
/// every skipped frame is counted.
#[test]
fn trading_state_events_are_recovered_and_warnings_are_bounded() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let mut state = |value: i64| {
        appender
            .append(
                DaemonEvent::RECORD_TYPE,
                event(daemon_event::TRADING_STATE, value).to_bytes(),
            )
            .unwrap();
        recover(dir.path(), limits, &instruments).unwrap()
    };
    assert_eq!(state(1).trading_state, TradingState::ReduceOnly);
    assert_eq!(state(2).trading_state, TradingState::Halted);
    assert_eq!(state(0).trading_state, TradingState::Active);
    assert_eq!(state(1).trading_state, TradingState::ReduceOnly);
    let mut last = None;
    for _ in 0..70 {
        last = Some(state(3));
    }
    let rec = last.unwrap();
    assert_eq!(rec.trading_state, TradingState::ReduceOnly);
    assert_eq!((rec.skipped, rec.warnings.len()), (70, 64));
    assert_eq!(
        rec.warnings[0].problem,
        WarningProblem::UnknownTradingState(3)
    );
}
