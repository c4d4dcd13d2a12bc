//! Resends and gaps, on the fake clock of `fix_session.rs`: the venue's ResendRequest reports
//! lost only the orders it never answered; sequence numbers at the edge of `u64` are refused
//! without wrapping or panicking; an inbound gap the venue does not fill is surfaced as
//! `GapUnfilled` (Reset over it, GapFill over a dropped report, timeout, session end) and a
//! normal GapFill is not; the transport hands reports only while the caller has room.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use levibot_gateway::fix::{
    ConnectionStatus, DisconnectReason, FixSession, GAP_APP_WINDOW_LEN, GapUnfilledReason,
    ORDER_SEQ_MAP_LEN, SEQ_NUM_MAX, SessionError, SessionEvent, SessionSeqNums, SessionState,
    parse_message,
};
use levibot_shm::codes::reject_reason;
use levibot_shm::records::{OrderRequest, exec_type, order_kind};

use crate::support::*;

const U64_MAX: &str = "18446744073709551615";

/// The events queued in the session (lost orders, a gap given up on close), all of them.
fn queued(session: &mut FixSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| session.take_event()).collect()
}

/// The client order ids of the lost-in-flight reports among `events`.
fn lost_ids(events: &[SessionEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|event| match event {
            SessionEvent::Report(r) if r.reject_reason == reject_reason::LOST_IN_FLIGHT => {
                assert_eq!(r.exec_type, exec_type::REJECTED);
                r.client_order_id
            }
            other => panic!("expected a lost order's report, got {other:?}"),
        })
        .collect()
}

fn cancel(client_order_id: u64, orig_client_order_id: u64) -> OrderRequest {
    OrderRequest {
        kind: order_kind::CANCEL,
        orig_client_order_id,
        qty: 0,
        ..limit_buy(client_order_id)
    }
}

/// The session Reject (35=3) the session just wrote, as (RefSeqNum, RefTagID, reason).
fn reject_written(session: &mut FixSession) -> (String, String, String) {
    let out = drain(session);
    assert_eq!(out.len(), 1, "one message: {out:?}");
    assert_eq!(value(&out[0], 35), Some("3"), "a session Reject: {out:?}");
    let field = |tag| value(&out[0], tag).unwrap().to_owned();
    (field(45), field(371), field(373))
}

#[test]
fn venue_resend_reports_lost_only_the_orders_it_never_answered() {
    let mut session = active();
    // Order 7 (number 2) is acknowledged, order 8 (3) filled, the cancel 9 of order 8 (4)
    // refused, and order 10 (5), for another instrument than the rest, never answered.
    let other = table().get(1).expect("a second instrument");
    assert_ne!(other.id, 0);
    let order_10 = OrderRequest {
        instrument_id: other.id,
        ..limit_buy(10)
    };
    for order in [limit_buy(7), limit_buy(8), cancel(9, 8), order_10] {
        session.send_order(&order, T0).unwrap();
    }
    drain(&mut session);
    let ack = "11=7|37=1|17=1|150=0|39=0|54=1|55=NKNUSDT|14=0|151=1.5|";
    let fill = "11=8|37=2|17=2|150=F|39=2|54=1|55=NKNUSDT|31=0.3513|32=1.5|14=1.5|151=0|";
    let cancel_reject = "11=9|41=8|37=2|39=2|434=1|102=0|";
    assert!(matches!(
        feed(&mut session, &peer("8", 2, ack), T0),
        Some(SessionEvent::Report(_))
    ));
    assert!(matches!(
        feed(&mut session, &peer("8", 3, fill), T0),
        Some(SessionEvent::Report(_))
    ));
    assert!(matches!(
        feed(&mut session, &peer("9", 4, cancel_reject), T0),
        Some(SessionEvent::Report(_))
    ));
    // The venue restarted and asks for everything from 2: one GapFill over 2..=5, and only
    // order 10 is reported lost.
    assert_eq!(feed(&mut session, &peer("2", 5, "7=2|16=0|"), T0), None);
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    assert_eq!(value(&out[0], 35), Some("4"));
    assert_eq!(value(&out[0], 34), Some("2"));
    assert_eq!(value(&out[0], 36), Some("6"));
    let lost = queued(&mut session);
    assert_eq!(lost_ids(&lost), [10]);
    // The report carries what the order said (the venue never saw it).
    let SessionEvent::Report(report) = &lost[0] else {
        unreachable!()
    };
    let order = order_10;
    assert_eq!(
        (
            report.px,
            report.instrument_id,
            report.side,
            report.ord_status
        ),
        (
            order.px,
            order.instrument_id,
            order.side,
            exec_type::REJECTED
        )
    );
    // The same request again: the GapFill again, no order reported twice.
    assert_eq!(feed(&mut session, &peer("2", 6, "7=2|16=0|"), T0), None);
    assert_eq!(drain(&mut session).len(), 1);
    assert_eq!(queued(&mut session), []);
}

#[test]
fn reports_naming_an_order_by_orig_id_or_request_id_keep_it_from_being_lost_unless_rejections() {
    let mut session = active();
    let status_request = OrderRequest {
        kind: order_kind::MASS_STATUS,
        client_order_id: 11,
        instrument_id: u32::MAX,
        ..OrderRequest::default()
    };
    // Order 7 and its cancel 9; a mass status request 11; order 12 and its cancel 13; order 14
    // (number 7).
    for order in [
        limit_buy(7),
        cancel(9, 7),
        status_request,
        limit_buy(12),
        cancel(13, 12),
        limit_buy(14),
    ] {
        session.send_order(&order, T0).unwrap();
    }
    drain(&mut session);
    // Order 7 is cancelled: the report is filed under the cancel's id and names 7 in
    // OrigClOrdID (41). The status request is answered (no orders), naming it in 584. The
    // cancel 13 is rejected by an ExecutionReport (150=8): that says nothing of order 12.
    let canceled = "11=9|41=7|37=1|17=1|150=4|39=4|54=1|55=NKNUSDT|14=0|151=0|";
    let no_orders = "37=NONE|17=2|150=I|39=8|14=0|151=0|584=11|911=0|912=Y|";
    let refused = "11=13|41=12|37=NONE|17=3|150=8|39=8|54=1|55=NKNUSDT|14=0|151=0|";
    for (seq, body) in [(2, canceled), (3, no_orders), (4, refused)] {
        assert!(
            matches!(
                feed(&mut session, &peer("8", seq, body), T0),
                Some(SessionEvent::Report(_))
            ),
            "{body}"
        );
    }
    // Order 14 is refused by a session Reject naming its number (RefSeqNum 45).
    let session_reject = peer("3", 5, "45=7|371=44|373=5|58=bad price|");
    assert!(matches!(
        feed(&mut session, &session_reject, T0),
        Some(SessionEvent::Report(_))
    ));
    assert_eq!(feed(&mut session, &peer("2", 6, "7=2|16=0|"), T0), None);
    assert_eq!(drain(&mut session).len(), 1, "the GapFill");
    assert_eq!(lost_ids(&queued(&mut session)), [12]);
}

#[test]
fn venue_resend_stops_at_its_end_seq_no() {
    let mut session = active();
    for id in [7, 8, 9] {
        session.send_order(&limit_buy(id), T0).unwrap();
    }
    drain(&mut session);
    // Numbers 2 and 3 only: order 9 (number 4) is not in the range.
    assert_eq!(feed(&mut session, &peer("2", 2, "7=2|16=3|"), T0), None);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 34), Some("2"));
    assert_eq!(value(&out[0], 36), Some("4"));
    assert_eq!(lost_ids(&queued(&mut session)), [7, 8]);
    // An EndSeqNo before the BeginSeqNo is refused, naming tag 16.
    assert_eq!(feed(&mut session, &peer("2", 3, "7=4|16=3|"), T0), None);
    assert_eq!(
        reject_written(&mut session),
        ("3".into(), "16".into(), "5".into())
    );
    assert_eq!(queued(&mut session), []);
}

#[test]
fn after_a_restart_an_order_the_journal_says_was_answered_is_not_lost() {
    let mut session = session_with(SessionSeqNums {
        next_sender: 7,
        next_target: 1,
    });
    session.remember_sent(&limit_buy(40), 5);
    session.remember_sent(&limit_buy(41), 6);
    assert!(session.remember_answered(40));
    assert!(!session.remember_answered(99));
    session.logon(T0).unwrap();
    drain(&mut session);
    feed(&mut session, &peer("A", 1, "98=0|108=30|"), T0);
    assert_eq!(feed(&mut session, &peer("2", 2, "7=5|16=0|"), T0), None);
    assert_eq!(lost_ids(&queued(&mut session)), [41]);
}

#[test]
fn handle_waits_while_events_are_queued() {
    let mut session = active();
    session.send_order(&limit_buy(7), T0).unwrap();
    session.send_order(&limit_buy(8), T0).unwrap();
    drain(&mut session);
    feed(&mut session, &peer("2", 2, "7=2|16=0|"), T0);
    assert_eq!(session.queued_events(), 2);
    // Nothing is taken until the queue is empty.
    let heartbeat = peer("0", 3, "");
    assert_eq!(session.handle(&heartbeat, T0).consumed, 0);
    assert!(matches!(
        session.peek_event(),
        Some(SessionEvent::Report(_))
    ));
    assert_eq!(lost_ids(&queued(&mut session)), [7, 8]);
    assert_eq!(feed(&mut session, &heartbeat, T0), None);
    assert_eq!(session.seq_nums().next_target, 4);
}

#[test]
fn a_resend_request_for_a_huge_range_is_bounded() {
    // Our numbers near the top: the venue asks for everything from 1.
    let mut session = session_with(SessionSeqNums {
        next_sender: SEQ_NUM_MAX - 2,
        next_target: 1,
    });
    session.logon(T0).unwrap();
    drain(&mut session);
    feed(&mut session, &peer("A", 1, "98=0|108=30|"), T0);
    let id = session.send_order(&limit_buy(7), T0).unwrap();
    assert_eq!(id, SEQ_NUM_MAX - 1);
    drain(&mut session);
    let started = Instant::now();
    assert_eq!(feed(&mut session, &peer("2", 2, "7=1|16=0|"), T0), None);
    assert!(started.elapsed() < Duration::from_secs(5));
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 34), Some("1"));
    assert_eq!(value(&out[0], 36), Some(SEQ_NUM_MAX.to_string().as_str()));
    assert_eq!(lost_ids(&queued(&mut session)), [7]);
}

#[test]
fn a_resend_request_reports_every_remembered_order_lost_at_once() {
    // More unanswered orders than the session remembers: the venue asks for everything, and
    // each of the last ORDER_SEQ_MAP_LEN orders is reported lost, all queued at once.
    let mut session = active();
    let sent = ORDER_SEQ_MAP_LEN as u64 + 5;
    for id in 1..=sent {
        session.send_order(&limit_buy(id), T0).unwrap();
        let written = session.outbound().len();
        session.consume_outbound(written);
    }
    assert_eq!(feed(&mut session, &peer("2", 2, "7=2|16=0|"), T0), None);
    assert_eq!(session.queued_events(), ORDER_SEQ_MAP_LEN);
    let first_remembered = sent - ORDER_SEQ_MAP_LEN as u64 + 1;
    assert_eq!(
        lost_ids(&queued(&mut session)),
        (first_remembered..=sent).collect::<Vec<_>>()
    );
}

#[test]
fn a_resend_request_past_what_we_sent_is_filled_up_to_our_next_number_only() {
    let mut session = active();
    session.send_order(&limit_buy(7), T0).unwrap(); // number 2
    drain(&mut session);
    assert_eq!(feed(&mut session, &peer("2", 2, "7=2|16=100|"), T0), None);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("4"));
    assert_eq!(value(&out[0], 34), Some("2"));
    assert_eq!(value(&out[0], 36), Some("3"), "NewSeqNo: our next number");
    assert_eq!(lost_ids(&queued(&mut session)), [7]);
}

#[test]
fn a_sequence_reset_forgets_the_orders_of_the_old_sequence() {
    let mut session = configured_session(
        levibot_gateway::fix::SessionConfig {
            reset_seq_num: true,
            ..config()
        },
        SessionSeqNums::default(),
    );
    let logon = |session: &mut FixSession| {
        session.logon(T0).unwrap();
        drain(session);
        let event = feed(session, &peer("A", 1, "98=0|108=30|141=Y|"), T0);
        assert!(
            matches!(event, Some(SessionEvent::LoggedOn { .. })),
            "{event:?}"
        );
    };
    logon(&mut session);
    // The old sequence: orders 7 and 9 as numbers 2 and 3, never answered.
    for id in [7, 9] {
        session.send_order(&limit_buy(id), T0).unwrap();
    }
    drain(&mut session);
    session.on_disconnected();
    // The new sequence: order 8 as number 2, then a Heartbeat (answering a TestRequest) as 3.
    logon(&mut session);
    assert_eq!(session.send_order(&limit_buy(8), T0).unwrap(), 2);
    assert_eq!(feed(&mut session, &peer("1", 2, "112=ping|"), T0), None);
    assert_eq!(drain(&mut session).len(), 2);
    assert_eq!(feed(&mut session, &peer("2", 3, "7=1|16=0|"), T0), None);
    assert_eq!(
        lost_ids(&queued(&mut session)),
        [8],
        "number 3 is a Heartbeat now, not the old order 9"
    );
}

#[test]
fn sequence_fields_near_u64_max_are_refused_naming_the_tag() {
    let mut session = active();
    // Reset to u64::MAX: refused, nothing moves.
    let reset = peer("4", 2, &format!("36={U64_MAX}|"));
    assert_eq!(feed(&mut session, &reset, T0), None);
    assert_eq!(
        reject_written(&mut session),
        ("2".into(), "36".into(), "5".into())
    );
    assert_eq!(session.seq_nums().next_target, 2);
    // A GapFill to u64::MAX: its own number is consumed, NewSeqNo refused.
    let gap_fill = peer("4", 2, &format!("123=Y|36={U64_MAX}|"));
    assert_eq!(feed(&mut session, &gap_fill, T0), None);
    assert_eq!(
        reject_written(&mut session),
        ("2".into(), "36".into(), "5".into())
    );
    assert_eq!(session.seq_nums().next_target, 3);
    // A ResendRequest from u64::MAX, and one up to it.
    let resend = peer("2", 3, &format!("7={U64_MAX}|16=0|"));
    assert_eq!(feed(&mut session, &resend, T0), None);
    assert_eq!(
        reject_written(&mut session),
        ("3".into(), "7".into(), "5".into())
    );
    let resend = peer("2", 4, &format!("7=1|16={U64_MAX}|"));
    assert_eq!(feed(&mut session, &resend, T0), None);
    assert_eq!(
        reject_written(&mut session),
        ("4".into(), "16".into(), "5".into())
    );
    assert_eq!(
        session.seq_nums(),
        SessionSeqNums {
            next_sender: 6,
            next_target: 5
        }
    );
    assert_eq!(session.state(), SessionState::Active);
    assert_eq!(queued(&mut session), []);
    // A taken-back order with an absurd number is refused, without overflow.
    assert!(!session.retract_order(u64::MAX, 10));
}

#[test]
fn the_last_valid_number_is_the_end_of_the_sequence() {
    let mut session = active();
    // A Reset to the largest number is accepted, and a message there processed.
    let reset = peer("4", 2, &format!("36={SEQ_NUM_MAX}|"));
    assert_eq!(feed(&mut session, &reset, T0), None);
    assert_eq!(session.seq_nums().next_target, SEQ_NUM_MAX);
    assert_eq!(feed(&mut session, &peer("0", SEQ_NUM_MAX, ""), T0), None);
    assert_eq!(session.seq_nums().next_target, SEQ_NUM_MAX + 1);
    // Above it: a Reject naming tag 34, a Logout saying why, and the session ends.
    let beyond = peer("0", SEQ_NUM_MAX + 1, "");
    assert_eq!(
        feed(&mut session, &beyond, T0),
        Some(SessionEvent::Disconnected(
            DisconnectReason::SeqNumOutOfRange {
                received: SEQ_NUM_MAX + 1
            }
        ))
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("3"));
    assert_eq!(value(&out[0], 371), Some("34"));
    assert_eq!(value(&out[1], 35), Some("5"));
    assert_eq!(value(&out[1], 58), Some("MsgSeqNum (34) out of range"));
    assert_eq!(session.state(), SessionState::Closed);
    assert_eq!(session.seq_nums().next_target, SEQ_NUM_MAX + 1);
}

#[test]
fn msg_seq_num_u64_max_ends_the_session_without_panicking() {
    let mut session = active();
    let event = feed(&mut session, &peer("0", u64::MAX, ""), T0);
    assert_eq!(
        event,
        Some(SessionEvent::Disconnected(
            DisconnectReason::SeqNumOutOfRange { received: u64::MAX }
        ))
    );
    assert_eq!(session.seq_nums().next_target, 2);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 371), Some("34"));
    assert_eq!(value(&out[0], 45), Some(U64_MAX));
}

#[test]
fn our_numbers_stop_at_the_last_valid_one() {
    // u64::MAX is not a number to send: no Logon.
    let mut session = session_with(SessionSeqNums {
        next_sender: u64::MAX,
        next_target: 1,
    });
    assert_eq!(
        session.logon(T0),
        Err(SessionError::SeqNumOutOfRange {
            next_sender: u64::MAX
        })
    );
    // The last valid number is used, then nothing more is sent.
    let mut session = session_with(SessionSeqNums {
        next_sender: SEQ_NUM_MAX,
        next_target: 1,
    });
    session.logon(T0).unwrap();
    assert_eq!(
        value(&drain(&mut session)[0], 34),
        Some(SEQ_NUM_MAX.to_string().as_str())
    );
    feed(&mut session, &peer("A", 1, "98=0|108=30|"), T0);
    assert_eq!(
        session.send_order(&limit_buy(7), T0),
        Err(SessionError::SeqNumOutOfRange {
            next_sender: SEQ_NUM_MAX + 1
        })
    );
    // A TestRequest we cannot answer ends the session.
    assert_eq!(
        feed(&mut session, &peer("1", 2, "112=X|"), T0),
        Some(SessionEvent::Disconnected(
            DisconnectReason::SenderSeqNumOutOfRange
        ))
    );
    assert_eq!(session.seq_nums().next_sender, SEQ_NUM_MAX + 1);
}

/// A session with a gap: the venue's number 5 arrived (a heartbeat, or `kind`/`body`) when 2
/// was expected. Our ResendRequest has been taken.
fn gapped(kind: &str, body: &str) -> FixSession {
    let mut session = active();
    assert_eq!(
        feed(&mut session, &peer(kind, 5, body), T0),
        Some(SessionEvent::GapDetected {
            expected: 2,
            received: 5
        })
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("2"));
    session
}

const FILL: &str = "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|31=0.3513|32=1.5|14=1.5|151=0|";

#[test]
fn a_gap_fill_over_session_messages_is_not_unfillable() {
    let mut session = gapped("0", "");
    // The venue's answer: 2..=5 were session messages.
    let gap_fill = peer_with("4", 2, "43=Y|122=20240229-12:00:00.000|", "123=Y|36=6|");
    assert_eq!(feed(&mut session, &gap_fill, T0 + SEC), None);
    assert_eq!(session.seq_nums().next_target, 6);
    assert_eq!(feed(&mut session, &peer("0", 6, ""), T0 + SEC), None);
    // Nothing unfilled, now or later.
    assert_eq!(queued(&mut session), []);
    for t in [GRACE, 3 * GRACE] {
        let event = session.poll_timers(T0 + t);
        assert!(!matches!(event, Some(SessionEvent::GapUnfilled { .. })));
    }
    // A GapFill up to a dropped report that is then resent is normal too.
    let mut session = gapped("8", FILL);
    let gap_fill = peer_with("4", 2, "43=Y|122=20240229-12:00:00.000|", "123=Y|36=5|");
    assert_eq!(feed(&mut session, &gap_fill, T0), None);
    let resent = peer_with("8", 5, "43=Y|122=20240229-12:00:00.000|", FILL);
    assert!(matches!(
        feed(&mut session, &resent, T0),
        Some(SessionEvent::Report(r)) if r.client_order_id == 7
    ));
    assert_eq!(session.poll_timers(T0 + 3 * GRACE), None);
    assert_eq!(queued(&mut session), []);
}

#[test]
fn a_gap_fill_over_a_dropped_report_is_unfilled() {
    let mut session = gapped("8", FILL);
    // The venue says 2..=5 were session messages, but 5 was a fill.
    let gap_fill = peer_with("4", 2, "43=Y|122=20240229-12:00:00.000|", "123=Y|36=6|");
    assert_eq!(
        feed(&mut session, &gap_fill, T0),
        Some(SessionEvent::GapUnfilled {
            from: 2,
            to: 5,
            reason: GapUnfilledReason::GapFillOverApplication
        })
    );
    assert_eq!(session.seq_nums().next_target, 6);
}

#[test]
fn a_report_dropped_just_past_the_gaps_window_still_makes_its_gap_fill_unfilled() {
    // The gap opened at 2: the window of numbers it tracks one by one is 2..2 + 4096. A report
    // dropped at the first number past it is remembered too.
    let mut session = gapped("0", "");
    let past_window = 2 + GAP_APP_WINDOW_LEN as u64;
    assert_eq!(
        feed(&mut session, &peer("8", past_window, FILL), T0),
        Some(SessionEvent::GapDetected {
            expected: 2,
            received: past_window
        })
    );
    let fill_to = past_window + 1;
    let gap_fill = peer_with(
        "4",
        2,
        "43=Y|122=20240229-12:00:00.000|",
        &format!("123=Y|36={fill_to}|"),
    );
    assert_eq!(
        feed(&mut session, &gap_fill, T0),
        Some(SessionEvent::GapUnfilled {
            from: 2,
            to: past_window,
            reason: GapUnfilledReason::GapFillOverApplication
        })
    );
    assert_eq!(session.seq_nums().next_target, fill_to);
}

#[test]
fn a_gap_stays_open_until_its_last_number_is_received() {
    // 5 (a report) was dropped: the gap is 2..=5. The venue resends 2..=4 as session messages.
    let mut session = gapped("8", FILL);
    for seq in 2..=4 {
        let resent = peer_with("0", seq, "43=Y|122=20240229-12:00:00.000|", "");
        assert_eq!(feed(&mut session, &resent, T0), None, "{seq}");
    }
    assert_eq!(session.seq_nums().next_target, 5);
    // Expecting 5, the gap's last number: still open, so a GapFill over 5 is caught.
    let gap_fill = peer_with("4", 5, "43=Y|122=20240229-12:00:00.000|", "123=Y|36=6|");
    assert_eq!(
        feed(&mut session, &gap_fill, T0),
        Some(SessionEvent::GapUnfilled {
            from: 5,
            to: 5,
            reason: GapUnfilledReason::GapFillOverApplication
        })
    );
}

#[test]
fn a_gap_fill_or_reset_that_skips_nothing_is_accepted_and_reports_nothing() {
    // A GapFill whose NewSeqNo is the number after its own: a fill of nothing, accepted.
    let mut session = active();
    let empty_fill = peer_with("4", 2, "43=Y|122=20240229-12:00:00.000|", "123=Y|36=3|");
    assert_eq!(feed(&mut session, &empty_fill, T0), None);
    assert_eq!(
        drain(&mut session),
        Vec::<crate::support::Fields>::new(),
        "no Reject"
    );
    assert_eq!(session.seq_nums().next_target, 3);

    // While a gap is open (2..=5), a Reset to the number already expected skips nothing.
    let mut session = gapped("0", "");
    let reset = peer("4", 9, "123=N|36=2|");
    assert_eq!(feed(&mut session, &reset, T0), None);
    assert_eq!(drain(&mut session), Vec::<crate::support::Fields>::new());
    assert_eq!(session.seq_nums().next_target, 2);
}

#[test]
fn a_sequence_reset_over_an_open_gap_is_unfilled() {
    let mut session = gapped("0", "");
    feed(&mut session, &peer("0", 6, ""), T0);
    // Reset mode (no 123) past the gap: 2..=9 will never come.
    assert_eq!(
        feed(&mut session, &peer("4", 7, "36=10|"), T0),
        Some(SessionEvent::GapUnfilled {
            from: 2,
            to: 9,
            reason: GapUnfilledReason::SequenceReset
        })
    );
    assert_eq!(session.seq_nums().next_target, 10);
    // The gap is closed: 10 is processed, no new ResendRequest.
    assert_eq!(feed(&mut session, &peer("0", 10, ""), T0), None);
    assert!(drain(&mut session).is_empty());
    assert_eq!(queued(&mut session), []);
}

#[test]
fn a_resend_that_does_not_come_is_given_up_after_two_heartbeat_intervals() {
    let mut session = gapped("0", "");
    let timeout = 2 * u64::from(HEART_BT_INT_S) * SEC;
    // More messages beyond the gap: dropped, and no progress.
    assert!(matches!(
        feed(&mut session, &peer("0", 6, ""), T0 + 20 * SEC),
        Some(SessionEvent::GapDetected { .. })
    ));
    assert!(!matches!(
        session.poll_timers(T0 + timeout - 1),
        Some(SessionEvent::GapUnfilled { .. })
    ));
    assert_eq!(
        session.poll_timers(T0 + timeout),
        Some(SessionEvent::GapUnfilled {
            from: 2,
            to: 6,
            reason: GapUnfilledReason::Timeout
        })
    );
    // The session moves on past the highest number received.
    assert_eq!(session.seq_nums().next_target, 7);
    assert_eq!(session.state(), SessionState::Active);
    drain(&mut session);
    assert_eq!(feed(&mut session, &peer("0", 7, ""), T0 + timeout), None);
    assert!(drain(&mut session).is_empty());
    assert_eq!(session.poll_timers(T0 + 2 * timeout), None);
    assert_eq!(queued(&mut session), []);
}

#[test]
fn a_resend_in_progress_is_not_timed_out() {
    let mut session = gapped("0", "");
    let timeout = 2 * u64::from(HEART_BT_INT_S) * SEC;
    // The venue resends 2 late, then goes quiet: the clock restarts at 2.
    let resent = peer_with("0", 2, "43=Y|122=20240229-12:00:00.000|", "");
    assert_eq!(feed(&mut session, &resent, T0 + 50 * SEC), None);
    assert!(!matches!(
        session.poll_timers(T0 + 50 * SEC + timeout - 1),
        Some(SessionEvent::GapUnfilled { .. })
    ));
    assert_eq!(
        session.poll_timers(T0 + 50 * SEC + timeout),
        Some(SessionEvent::GapUnfilled {
            from: 3,
            to: 5,
            reason: GapUnfilledReason::Timeout
        })
    );
}

#[test]
fn a_gap_open_when_the_session_ends_is_unfilled() {
    // The connection drops.
    let mut session = gapped("0", "");
    session.on_disconnected();
    assert_eq!(
        queued(&mut session),
        [SessionEvent::GapUnfilled {
            from: 2,
            to: 5,
            reason: GapUnfilledReason::Disconnected
        }]
    );
    // The next session asks again from 2.
    assert_eq!(session.seq_nums().next_target, 2);
    session.logon(T0 + SEC).unwrap();
    drain(&mut session);
    assert!(matches!(
        feed(&mut session, &peer("A", 6, "98=0|108=30|"), T0 + SEC),
        Some(SessionEvent::LoggedOn { .. })
    ));
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("2"));
    assert_eq!(value(&out[0], 7), Some("2"));

    // The venue logs out.
    let mut session = gapped("0", "");
    assert_eq!(
        feed(&mut session, &peer("5", 6, ""), T0),
        Some(SessionEvent::LoggedOut { by_peer: true })
    );
    assert_eq!(
        queued(&mut session),
        [SessionEvent::GapUnfilled {
            from: 2,
            to: 6,
            reason: GapUnfilledReason::Disconnected
        }]
    );

    // The session gives up on the venue.
    let mut session = gapped("0", "");
    session.poll_timers(T0 + GRACE);
    assert_eq!(
        session.poll_timers(T0 + 2 * GRACE),
        Some(SessionEvent::Disconnected(
            DisconnectReason::HeartbeatTimeout
        ))
    );
    assert!(matches!(
        queued(&mut session)[..],
        [SessionEvent::GapUnfilled {
            reason: GapUnfilledReason::Disconnected,
            ..
        }]
    ));
}

#[test]
fn the_connection_hands_reports_only_while_the_caller_has_room() {
    const TIMEOUT: Duration = Duration::from_secs(30);
    const REPORTS: u64 = 50;
    let (mut session, mut conn, mut venue) = connected_to_venue();
    let mut events = Vec::new();
    // Our Logon, the venue's, and three orders.
    let deadline = Instant::now() + TIMEOUT;
    let mut received = Vec::new();
    while parse_message(&received).is_err() {
        assert!(Instant::now() < deadline, "no Logon");
        conn.poll(&mut session, T0, |e| events.push(e)).unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n) = venue.read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
    }
    venue.write_all(&peer("A", 1, "98=0|108=30|")).unwrap();
    while session.state() != SessionState::Active {
        assert!(Instant::now() < deadline, "no LoggedOn");
        conn.poll(&mut session, T0, |e| events.push(e)).unwrap();
    }
    for id in [1, 2, 3] {
        session.send_order(&limit_buy(1000 + id), T0).unwrap();
    }
    // Reports, a ResendRequest that loses the three orders, more reports, then the venue
    // closes.
    let report = |seq: u64, id: u64| {
        peer(
            "8",
            seq,
            &format!("11={id}|37=1|17=1|150=0|39=0|54=1|55=NKNUSDT|14=0|151=1.5|"),
        )
    };
    let mut stream = Vec::new();
    for i in 0..REPORTS {
        stream.extend(report(2 + i, i));
    }
    stream.extend(peer("2", 2 + REPORTS, "7=2|16=0|"));
    for i in REPORTS..2 * REPORTS {
        stream.extend(report(3 + i, i));
    }
    venue.write_all(&stream).unwrap();
    // Our side is left unread (a close would be a reset): only ours is shut.
    venue.shutdown(std::net::Shutdown::Write).unwrap();
    // No room: the reports wait, in the buffer and the kernel.
    events.clear();
    for _ in 0..20 {
        conn.poll_bounded(&mut session, T0, 0, |e| events.push(e))
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        events.iter().all(|e| !matches!(e, SessionEvent::Report(_))),
        "{events:?}"
    );
    assert_eq!(session.seq_nums().next_target, 2);
    // Room for 7 at a time: all arrive, in order, and only then does the connection close.
    let mut ids = Vec::new();
    let mut lost = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "reports missing: {ids:?}");
        let mut round = 0;
        let status = conn
            .poll_bounded(&mut session, T0, 7, |e| {
                if let SessionEvent::Report(r) = e {
                    round += 1;
                    if r.reject_reason == reject_reason::LOST_IN_FLIGHT {
                        lost.push(r.client_order_id);
                    } else {
                        ids.push(r.client_order_id);
                    }
                }
            })
            .unwrap();
        assert!(round <= 7);
        if status == ConnectionStatus::Closed {
            break;
        }
    }
    assert_eq!(ids, (0..2 * REPORTS).collect::<Vec<_>>());
    assert_eq!(lost, [1001, 1002, 1003]);
    assert_eq!(session.seq_nums().next_target, 3 + 2 * REPORTS);
}
