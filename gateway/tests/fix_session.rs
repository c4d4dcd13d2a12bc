//! The FIX session state machine alone, with a fake clock and a scripted venue: logon,
//! heartbeats and TestRequest timing, gaps and ResendRequest, GapFill and Reset, a too-low
//! MsgSeqNum, garbled input, missing fields, the venue's ResendRequest, the Logout handshake,
//! reports decoded into records, sequence numbers kept across sessions, random bytes.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use levibot_gateway::decimal::DecimalError;
use levibot_gateway::fix::{
    BinanceLogon, BinanceLogonError, ConnectionStatus, DisconnectReason, FixConnection, FixSession,
    INSTRUMENT_UNKNOWN, MessageHandling, ReportError, SessionConfig, SessionConfigError,
    SessionError, SessionEvent, SessionSeqNums, SessionState, checksum, parse_message,
};
use levibot_shm::codes::reject_reason;
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, report_flag, side,
};

use crate::support::*;

#[test]
fn logon_carries_heartbeat_interval_and_sequence() {
    let mut session = session_with(SessionSeqNums::default());
    assert_eq!(session.state(), SessionState::Disconnected);
    session.logon(T0).unwrap();
    assert_eq!(session.state(), SessionState::LogonSent);
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    let logon = &out[0];
    assert_eq!(value(logon, 35), Some("A"));
    assert_eq!(value(logon, 34), Some("1"));
    assert_eq!(value(logon, 49), Some("LEVI"));
    assert_eq!(value(logon, 56), Some("EXEC"));
    assert_eq!(value(logon, 52), Some("20240229-12:00:00.000"));
    assert_eq!(value(logon, 98), Some("0"));
    assert_eq!(value(logon, 108), Some("30"));
    assert_eq!(value(logon, 141), None);
    // Orders wait for the venue's Logon.
    assert_eq!(
        session.send_order(&limit_buy(1), T0),
        Err(SessionError::NotActive {
            state: SessionState::LogonSent
        })
    );
}

#[test]
fn reset_logon_starts_both_sides_at_one() {
    let mut session = configured_session(
        SessionConfig {
            reset_seq_num: true,
            ..config()
        },
        SessionSeqNums {
            next_sender: 40,
            next_target: 50,
        },
    );
    session.logon(T0).unwrap();
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 34), Some("1"));
    assert_eq!(value(&out[0], 141), Some("Y"));
    let event = feed(&mut session, &peer("A", 1, "98=0|108=30|141=Y|"), T0);
    assert!(matches!(event, Some(SessionEvent::LoggedOn { .. })));
    assert_eq!(
        session.seq_nums(),
        SessionSeqNums {
            next_sender: 2,
            next_target: 2
        }
    );
}

#[test]
fn config_is_checked() {
    let bad = |config| FixSession::new(config, table().clone(), SessionSeqNums::default());
    assert_eq!(
        bad(SessionConfig {
            heart_bt_int_s: 0,
            ..config()
        })
        .unwrap_err(),
        SessionConfigError::HeartBtInt { heart_bt_int_s: 0 }
    );
    assert!(matches!(
        bad(SessionConfig {
            sender_comp_id: String::new(),
            ..config()
        }),
        Err(SessionConfigError::Encoder(_))
    ));
}

#[test]
fn logon_timeout_closes() {
    let mut session = session_with(SessionSeqNums::default());
    session.logon(T0).unwrap();
    assert_eq!(session.poll_timers(T0 + GRACE - 1), None);
    assert_eq!(
        session.poll_timers(T0 + GRACE),
        Some(SessionEvent::Disconnected(DisconnectReason::LogonTimeout))
    );
    assert_eq!(session.state(), SessionState::Closed);
}

#[test]
fn logon_answered_by_logout_is_refused() {
    let mut session = session_with(SessionSeqNums::default());
    session.logon(T0).unwrap();
    drain(&mut session);
    assert_eq!(
        feed(&mut session, &peer("5", 1, "58=bad signature|"), T0),
        Some(SessionEvent::Disconnected(DisconnectReason::LogonRefused))
    );
    assert_eq!(session.state(), SessionState::Closed);
    assert!(drain(&mut session).is_empty());
    // Anything else first is a protocol error: Logout and close.
    let mut session = session_with(SessionSeqNums::default());
    session.logon(T0).unwrap();
    drain(&mut session);
    assert_eq!(
        feed(&mut session, &peer("0", 1, ""), T0),
        Some(SessionEvent::Disconnected(DisconnectReason::NotLogon))
    );
    assert_eq!(value(&drain(&mut session)[0], 35), Some("5"));
}

#[test]
fn heartbeat_after_interval_of_our_silence() {
    let mut session = active();
    assert_eq!(session.poll_timers(T0 + 29 * SEC), None);
    assert!(drain(&mut session).is_empty());
    assert_eq!(session.poll_timers(T0 + 30 * SEC), None);
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    assert_eq!(value(&out[0], 35), Some("0"));
    assert_eq!(value(&out[0], 34), Some("2"));
    assert_eq!(value(&out[0], 112), None);
    // The next one counts from this one (the venue keeps talking meanwhile).
    feed(&mut session, &peer("0", 2, ""), T0 + 30 * SEC);
    session.poll_timers(T0 + 59 * SEC);
    assert!(drain(&mut session).is_empty());
}

#[test]
fn test_request_after_venue_silence_then_logout() {
    let mut session = active();
    // Keep our own side busy so that only the inbound clock matters.
    session.poll_timers(T0 + GRACE - 1);
    drain(&mut session);
    assert_eq!(session.poll_timers(T0 + GRACE), None);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("1"));
    assert_eq!(value(&out[0], 112), Some("1"));
    // No answer for as long again: Logout and close.
    assert_eq!(session.poll_timers(T0 + 2 * GRACE - 1), None);
    drain(&mut session);
    assert_eq!(
        session.poll_timers(T0 + 2 * GRACE),
        Some(SessionEvent::Disconnected(
            DisconnectReason::HeartbeatTimeout
        ))
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("5"));
    assert_eq!(session.state(), SessionState::Closed);
}

#[test]
fn an_answer_clears_the_test_request() {
    let mut session = active();
    session.poll_timers(T0 + GRACE);
    drain(&mut session);
    let answer = peer("0", 2, "112=1|");
    assert_eq!(feed(&mut session, &answer, T0 + GRACE + SEC), None);
    // The inbound clock restarted at the answer.
    assert_eq!(session.poll_timers(T0 + 2 * GRACE), None);
    assert_eq!(session.state(), SessionState::Active);
    let out = drain(&mut session);
    assert!(out.iter().all(|m| value(m, 35) != Some("1")));
}

#[test]
fn test_request_is_answered_with_its_id() {
    let mut session = active();
    assert_eq!(feed(&mut session, &peer("1", 2, "112=PING-7|"), T0), None);
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    assert_eq!(value(&out[0], 35), Some("0"));
    assert_eq!(value(&out[0], 112), Some("PING-7"));
    assert_eq!(session.seq_nums().next_target, 3);
}

#[test]
fn gap_sends_one_resend_request_and_gap_fill_closes_it() {
    let mut session = active();
    let event = feed(&mut session, &peer("0", 5, ""), T0);
    assert_eq!(
        event,
        Some(SessionEvent::GapDetected {
            expected: 2,
            received: 5
        })
    );
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    assert_eq!(value(&out[0], 35), Some("2"));
    assert_eq!(value(&out[0], 7), Some("2"));
    assert_eq!(value(&out[0], 16), Some("0"));
    // Still in the gap: dropped, no second request.
    feed(&mut session, &peer("0", 6, ""), T0);
    assert!(drain(&mut session).is_empty());
    assert_eq!(session.seq_nums().next_target, 2);
    // The venue fills 2..=6 and continues at 7.
    let gap_fill = peer_with("4", 2, "43=Y|122=20240229-12:00:00.000|", "123=Y|36=7|");
    assert_eq!(feed(&mut session, &gap_fill, T0), None);
    assert_eq!(session.seq_nums().next_target, 7);
    assert_eq!(feed(&mut session, &peer("0", 7, ""), T0), None);
    assert_eq!(session.seq_nums().next_target, 8);
    assert!(drain(&mut session).is_empty());
}

#[test]
fn resent_messages_are_processed_in_order() {
    let mut session = active();
    feed(&mut session, &peer("0", 3, ""), T0);
    drain(&mut session);
    // The venue resends 2 and 3 with PossDupFlag.
    let fill = "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|31=0.3513|32=1.5|14=1.5|151=0|";
    let event = feed(
        &mut session,
        &peer_with("8", 2, "43=Y|122=20240229-12:00:00.000|", fill),
        T0,
    );
    assert!(matches!(event, Some(SessionEvent::Report(_))));
    feed(
        &mut session,
        &peer_with("0", 3, "43=Y|122=20240229-12:00:00.000|", ""),
        T0,
    );
    assert_eq!(session.seq_nums().next_target, 4);
}

#[test]
fn sequence_reset_reset_mode_ignores_its_seq_num() {
    let mut session = active();
    assert_eq!(feed(&mut session, &peer("4", 99, "36=20|"), T0), None);
    assert_eq!(session.seq_nums().next_target, 20);
    // Backwards is refused with a Reject naming NewSeqNo.
    assert_eq!(feed(&mut session, &peer("4", 1, "36=5|"), T0), None);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("3"));
    assert_eq!(value(&out[0], 371), Some("36"));
    assert_eq!(value(&out[0], 373), Some("5"));
    assert_eq!(session.seq_nums().next_target, 20);
}

#[test]
fn seq_num_too_low_logs_out() {
    let mut session = active();
    feed(&mut session, &peer("0", 2, ""), T0);
    // A duplicate flagged as such is ignored.
    let dup = peer_with("0", 1, "43=Y|122=20240229-12:00:00.000|", "");
    assert_eq!(feed(&mut session, &dup, T0), None);
    assert!(drain(&mut session).is_empty());
    assert_eq!(session.state(), SessionState::Active);
    // Without PossDupFlag it is fatal.
    let event = feed(&mut session, &peer("0", 2, ""), T0);
    assert_eq!(
        event,
        Some(SessionEvent::Disconnected(DisconnectReason::SeqNumTooLow {
            expected: 3,
            received: 2
        }))
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("5"));
    assert_eq!(
        value(&out[0], 58),
        Some("MsgSeqNum too low, expecting 3 but received 2")
    );
    assert_eq!(session.state(), SessionState::Closed);
}

#[test]
fn garbled_input_is_skipped_without_consuming_a_seq_num() {
    let mut session = active();
    let mut bad_sum = peer("0", 2, "");
    let at = bad_sum.len() - 2;
    bad_sum[at] = if bad_sum[at] == b'9' {
        b'0'
    } else {
        bad_sum[at] + 1
    };
    let mut bad_length = peer("1", 2, "112=X|");
    bad_length[12] = b'9';
    let good = peer("0", 2, "");
    let mut input = [bad_sum, bad_length, good.clone()].concat();
    input.splice(0..0, b"noise".iter().copied());
    let mut at = 0;
    let mut events = Vec::new();
    while at < input.len() {
        let handled = session.handle(&input[at..], T0);
        assert!(handled.consumed > 0);
        at += handled.consumed;
        events.extend(handled.event);
    }
    assert!(events.is_empty());
    assert!(drain(&mut session).is_empty());
    assert_eq!(session.garbled_count(), 3);
    assert_eq!(session.seq_nums().next_target, 3);
}

#[test]
fn partial_input_waits() {
    let mut session = active();
    let msg = peer("1", 2, "112=X|");
    for cut in 0..msg.len() {
        let handled = session.handle(&msg[..cut], T0);
        assert_eq!((handled.consumed, handled.event), (0, None), "cut at {cut}");
    }
    assert_eq!(session.handle(&msg, T0).consumed, msg.len());
}

#[test]
fn missing_required_field_gets_a_session_reject() {
    let mut session = active();
    assert_eq!(feed(&mut session, &peer("1", 2, ""), T0), None);
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    let reject = &out[0];
    assert_eq!(value(reject, 35), Some("3"));
    assert_eq!(value(reject, 45), Some("2"));
    assert_eq!(value(reject, 371), Some("112"));
    assert_eq!(value(reject, 372), Some("1"));
    assert_eq!(value(reject, 373), Some("1"));
    // The message consumed its number.
    assert_eq!(session.seq_nums().next_target, 3);

    // An execution report without ExecType.
    let event = feed(
        &mut session,
        &peer("8", 3, "11=7|37=1|17=1|39=2|54=1|55=NKNUSDT|14=1|151=0|"),
        T0,
    );
    assert_eq!(
        event,
        Some(SessionEvent::BadReport(ReportError::MissingField {
            tag: 150
        }))
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 371), Some("150"));
    assert_eq!(value(&out[0], 372), Some("8"));
    assert_eq!(session.seq_nums().next_target, 4);
}

#[test]
fn wrong_comp_id_is_rejected_and_logged_out() {
    let mut session = active();
    let body = "35=0\x0134=2\x0149=OTHER\x0152=20240229-12:00:00.000\x0156=LEVI\x01";
    let mut msg = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = checksum(&msg);
    msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    assert_eq!(
        feed(&mut session, &msg, T0),
        Some(SessionEvent::Disconnected(DisconnectReason::CompIdMismatch))
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("3"));
    assert_eq!(value(&out[0], 373), Some("9"));
    assert_eq!(value(&out[1], 35), Some("5"));
}

#[test]
fn orders_use_the_next_seq_num_and_the_venue_resend_request_gets_a_gap_fill() {
    let mut session = active();
    assert_eq!(session.send_order(&limit_buy(7), T0).unwrap(), 2);
    assert_eq!(session.send_order(&limit_buy(8), T0).unwrap(), 3);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("D"));
    assert_eq!(value(&out[0], 34), Some("2"));
    assert_eq!(value(&out[0], 11), Some("7"));
    assert_eq!(value(&out[0], 44), Some("0.3513"));
    assert_eq!(value(&out[1], 34), Some("3"));
    // The venue asks for 2 onwards: one GapFill to 4, and the orders are not sent again.
    assert_eq!(
        feed(&mut session, &peer("2", 2, "7=2|16=0|"), T0 + SEC),
        None
    );
    let out = drain(&mut session);
    assert_eq!(out.len(), 1);
    let gap_fill = &out[0];
    assert_eq!(value(gap_fill, 35), Some("4"));
    assert_eq!(value(gap_fill, 34), Some("2"));
    assert_eq!(value(gap_fill, 43), Some("Y"));
    assert_eq!(value(gap_fill, 123), Some("Y"));
    assert_eq!(value(gap_fill, 36), Some("4"));
    assert_eq!(value(gap_fill, 122), Some("20240229-12:00:01.000"));
    assert_eq!(session.seq_nums().next_sender, 4);
    // The venue never got orders 7 and 8 and never will: each is reported REJECTED, in order.
    for id in [7, 8] {
        let Some(SessionEvent::Report(report)) = session.take_event() else {
            panic!("expected the lost order {id} reported");
        };
        assert_eq!(
            (
                report.client_order_id,
                report.exec_type,
                report.reject_reason
            ),
            (id, exec_type::REJECTED, reject_reason::LOST_IN_FLIGHT)
        );
        assert_eq!(report.instrument_id, nknusdt().id);
    }
    assert_eq!(session.take_event(), None);
}

#[test]
fn after_a_restart_a_journaled_order_the_venue_never_got_is_reported_lost() {
    // The journal says numbers 5 and 6 carried orders 40 and 41 (write-ahead), then the
    // process died; 6 never left. The restarted session resumes at 7.
    let mut session = session_with(SessionSeqNums {
        next_sender: 7,
        next_target: 1,
    });
    session.remember_sent(&limit_buy(40), 5);
    session.remember_sent(&limit_buy(41), 6);
    // Numbers not yet used are not remembered.
    session.remember_sent(&limit_buy(42), 7);
    session.logon(T0).unwrap();
    drain(&mut session);
    feed(&mut session, &peer("A", 1, "98=0|108=30|"), T0);
    // The venue got up to 5: it asks for 6 onwards.
    assert_eq!(feed(&mut session, &peer("2", 2, "7=6|16=0|"), T0), None);
    let Some(SessionEvent::Report(report)) = session.take_event() else {
        panic!("order 41 reported lost");
    };
    assert_eq!(
        (
            report.client_order_id,
            report.exec_type,
            report.reject_reason
        ),
        (41, exec_type::REJECTED, reject_reason::LOST_IN_FLIGHT)
    );
    assert_eq!(session.take_event(), None);
}

#[test]
fn session_reject_of_an_order_is_a_rejected_report() {
    let mut session = active();
    let market = OrderRequest {
        ord_type: ord_type::MARKET,
        time_in_force: 0,
        px: 0,
        ..limit_buy(9)
    };
    let seq = session.send_order(&market, T0).unwrap();
    drain(&mut session);
    let reject = peer(
        "3",
        2,
        &format!("45={seq}|58=Value is incorrect (out of range) for this tag|371=40|372=D|373=5|"),
    );
    let event = feed(&mut session, &reject, T0);
    let Some(SessionEvent::Report(report)) = event else {
        panic!("expected a report, got {event:?}");
    };
    assert_eq!(report.client_order_id, 9);
    assert_eq!(report.exec_type, exec_type::REJECTED);
    assert_eq!(report.instrument_id, nknusdt().id);
    assert_eq!(report.side, side::BUY);
    assert_eq!(report.reject_reason, reject_reason::SESSION_BASE + 5);
    // A Reject of something that was not an order stays a session event.
    let event = feed(&mut session, &peer("3", 3, "45=1|373=1|371=108|"), T0);
    assert_eq!(
        event,
        Some(SessionEvent::Rejected {
            ref_seq_num: 1,
            ref_tag: 108,
            reason: 1
        })
    );
}

fn report_of(session: &mut FixSession, seq: u64, msg_type: &str, body: &str) -> ExecutionReport {
    match feed(session, &peer(msg_type, seq, body), T0) {
        Some(SessionEvent::Report(report)) => report,
        other => panic!("expected a report, got {other:?}"),
    }
}

#[test]
fn execution_reports_are_decoded_in_instrument_units() {
    let mut session = active();
    let instrument = nknusdt();
    let price = |text: &str| {
        levibot_gateway::decimal::parse_units(text.as_bytes(), instrument.price_scale).unwrap()
    };
    let qty = |text: &str| {
        levibot_gateway::decimal::parse_units(text.as_bytes(), instrument.qty_scale).unwrap()
    };
    // QuickFIX's Executor's fill (its exact fields).
    let fill = report_of(
        &mut session,
        2,
        "8",
        "6=0.3513|11=7|14=1.5|17=1|31=0.3513|32=1.5|37=12|38=1.5|39=2|54=1|55=NKNUSDT|150=F|151=0|",
    );
    assert_eq!(
        fill,
        ExecutionReport {
            client_order_id: 7,
            venue_order_id: 12,
            last_px: price("0.3513"),
            last_qty: qty("1.5"),
            cum_qty: qty("1.5"),
            leaves_qty: 0,
            instrument_id: instrument.id,
            exec_type: exec_type::TRADE,
            ord_status: b'2',
            side: side::BUY,
            ..ExecutionReport::default()
        }
    );
    // A cancel is filed under the cancelled order (41), a replace under the new id (11).
    let canceled = report_of(
        &mut session,
        3,
        "8",
        "11=20|41=7|37=12|17=2|150=4|39=4|54=2|55=nknusdt|44=0.35|14=0|151=0|",
    );
    assert_eq!(canceled.client_order_id, 7);
    assert_eq!(canceled.exec_type, exec_type::CANCELED);
    assert_eq!(canceled.side, side::SELL);
    assert_eq!(canceled.px, price("0.35"));
    let replaced = report_of(
        &mut session,
        4,
        "8",
        "11=21|41=7|37=12|17=3|150=5|39=0|54=1|55=NKNUSDT|44=0.36|14=0|151=3|",
    );
    assert_eq!(replaced.client_order_id, 21);
    assert_eq!(replaced.leaves_qty, qty("3"));
    // An order rejected by the venue, with its reason.
    let rejected = report_of(
        &mut session,
        5,
        "8",
        "11=22|37=NONE|17=4|150=8|39=8|54=1|55=NKNUSDT|14=0|151=0|103=3|",
    );
    assert_eq!(rejected.venue_order_id, 0);
    assert_eq!(rejected.reject_reason, 3);
    assert_eq!(rejected.exec_type, exec_type::REJECTED);
}

#[test]
fn cancel_reject_is_rejected_under_the_refused_request() {
    let mut session = active();
    session.send_order(&limit_buy(30), T0).unwrap();
    let cancel = OrderRequest {
        kind: order_kind::CANCEL,
        client_order_id: 31,
        orig_client_order_id: 30,
        ..limit_buy(31)
    };
    session.send_order(&cancel, T0).unwrap();
    drain(&mut session);
    let report = report_of(&mut session, 2, "9", "11=31|41=30|37=5|39=0|434=1|102=1|");
    assert_eq!(report.client_order_id, 31);
    assert_eq!(report.exec_type, exec_type::REJECTED);
    assert_eq!(report.ord_status, b'0');
    assert_eq!(report.venue_order_id, 5);
    assert_eq!(report.reject_reason, 1);
    // Filled in from the orders the session sent.
    assert_eq!(report.instrument_id, nknusdt().id);
    assert_eq!(report.side, side::BUY);
    // A cancel reject of a request we do not know.
    let report = report_of(&mut session, 3, "9", "11=99|41=98|37=NONE|39=8|434=2|");
    assert_eq!(report.instrument_id, INSTRUMENT_UNKNOWN);
}

#[test]
fn bad_report_fields_are_typed_errors_naming_the_tag() {
    let mut session = active();
    let bad = |session: &mut FixSession, seq: u64, body: &str| match feed(
        session,
        &peer("8", seq, body),
        T0,
    ) {
        Some(SessionEvent::BadReport(error)) => error,
        other => panic!("expected a bad report, got {other:?}"),
    };
    let msg = peer(
        "8",
        2,
        "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|31=0.3x|14=0|151=0|",
    );
    let offset = msg.windows(4).position(|w| w == b"31=0").unwrap() + 3;
    assert_eq!(
        bad(
            &mut session,
            2,
            "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|31=0.3x|14=0|151=0|"
        ),
        ReportError::BadDecimal {
            tag: 31,
            offset,
            source: DecimalError::InvalidByte {
                offset: 3,
                byte: b'x'
            }
        }
    );
    assert!(matches!(
        bad(
            &mut session,
            3,
            "11=7|37=1|17=1|150=F|39=2|54=1|55=NOPE|14=0|151=0|"
        ),
        ReportError::UnknownSymbol { .. }
    ));
    assert!(matches!(
        bad(
            &mut session,
            4,
            "11=x7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|14=0|151=0|"
        ),
        ReportError::BadValue { tag: 11, .. }
    ));
    assert!(matches!(
        bad(
            &mut session,
            5,
            "11=7|37=1|17=1|150=F|39=2|54=3|55=NKNUSDT|14=0|151=0|"
        ),
        ReportError::BadValue { tag: 54, .. }
    ));
    assert_eq!(
        bad(
            &mut session,
            6,
            "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|14=0|"
        ),
        ReportError::MissingField { tag: 151 }
    );
    // Each was answered with a session Reject; the session goes on.
    assert_eq!(drain(&mut session).len(), 5);
    assert_eq!(session.state(), SessionState::Active);
    assert_eq!(session.seq_nums().next_target, 7);
}

#[test]
fn order_status_reports_are_decoded_with_the_last_flag() {
    let mut session = active();
    let instrument = nknusdt();
    let price = |text: &str| {
        levibot_gateway::decimal::parse_units(text.as_bytes(), instrument.price_scale).unwrap()
    };
    let qty = |text: &str| {
        levibot_gateway::decimal::parse_units(text.as_bytes(), instrument.qty_scale).unwrap()
    };
    // One working order of two: AvgPx becomes last_px; no flag.
    let first = report_of(
        &mut session,
        2,
        "8",
        "11=7|37=12|17=9|150=I|39=1|54=1|55=NKNUSDT|44=0.3513|38=3|14=1.5|151=1.5|6=0.3512|\
         584=77|911=2|912=N|",
    );
    assert_eq!(
        first,
        ExecutionReport {
            client_order_id: 7,
            venue_order_id: 12,
            px: price("0.3513"),
            last_px: price("0.3512"),
            cum_qty: qty("1.5"),
            leaves_qty: qty("1.5"),
            instrument_id: instrument.id,
            exec_type: exec_type::ORDER_STATUS,
            ord_status: b'1',
            side: side::BUY,
            flags: 0,
            ..ExecutionReport::default()
        }
    );
    // The last one (912=Y), a sell without AvgPx: last_px 0.
    let last = report_of(
        &mut session,
        3,
        "8",
        "11=8|37=13|17=10|150=I|39=0|54=2|55=NKNUSDT|44=0.36|38=2|14=0|151=2|584=77|911=2|912=Y|",
    );
    assert_eq!(
        (
            last.client_order_id,
            last.side,
            last.last_px,
            last.leaves_qty
        ),
        (8, side::SELL, 0, qty("2"))
    );
    assert_eq!(last.flags, report_flag::LAST_OF_MASS_STATUS);
    // The answer without orders: no ClOrdID, Symbol or Side.
    let empty = report_of(
        &mut session,
        4,
        "8",
        "37=NONE|17=11|150=I|39=8|14=0|151=0.000|6=0|584=78|911=0|912=Y|58=no orders|",
    );
    assert_eq!(
        empty,
        ExecutionReport {
            instrument_id: INSTRUMENT_UNKNOWN,
            exec_type: exec_type::ORDER_STATUS,
            ord_status: b'8',
            flags: report_flag::LAST_OF_MASS_STATUS,
            ..ExecutionReport::default()
        }
    );
    assert_eq!(drain(&mut session).len(), 0);
}

#[test]
fn bad_order_status_fields_are_typed_errors() {
    let mut session = active();
    let mut seq = 1;
    let mut bad = |session: &mut FixSession, body: &str| {
        seq += 1;
        match feed(session, &peer("8", seq, body), T0) {
            Some(SessionEvent::BadReport(error)) => error,
            other => panic!("expected a bad report, got {other:?}"),
        }
    };
    // Only the answer without orders may leave Symbol out.
    assert_eq!(
        bad(
            &mut session,
            "11=7|37=1|17=1|150=I|39=0|14=0|151=1|911=1|912=Y|"
        ),
        ReportError::MissingField { tag: 55 }
    );
    assert_eq!(
        bad(
            &mut session,
            "37=NONE|17=1|150=I|39=8|14=0|151=0|911=3|912=Y|"
        ),
        ReportError::MissingField { tag: 55 }
    );
    assert_eq!(
        bad(&mut session, "37=NONE|17=1|150=I|39=8|14=0|151=0|912=Y|"),
        ReportError::MissingField { tag: 55 }
    );
    // Its quantities are zero: there is no unit to read them in.
    assert!(matches!(
        bad(
            &mut session,
            "37=NONE|17=1|150=I|39=8|14=1|151=0|911=0|912=Y|"
        ),
        ReportError::BadValue { tag: 14, .. }
    ));
    assert!(matches!(
        bad(
            &mut session,
            "37=NONE|17=1|150=I|39=8|14=0|151=0|911=x|912=Y|"
        ),
        ReportError::BadValue { tag: 911, .. }
    ));
    assert!(matches!(
        bad(
            &mut session,
            "11=7|37=1|17=1|150=I|39=0|54=1|55=NKNUSDT|14=0|151=1|911=1|912=y|"
        ),
        ReportError::BadValue { tag: 912, .. }
    ));
    assert!(matches!(
        bad(
            &mut session,
            "11=7|37=1|17=1|150=I|39=0|54=1|55=NKNUSDT|14=0|151=1|6=0.3x|912=Y|"
        ),
        ReportError::BadDecimal { tag: 6, .. }
    ));
    assert_eq!(
        bad(
            &mut session,
            "11=7|37=1|17=1|150=I|39=0|54=1|55=NKNUSDT|14=0|912=Y|"
        ),
        ReportError::MissingField { tag: 151 }
    );
    // Each was answered with a session Reject; the session goes on.
    assert_eq!(drain(&mut session).len(), 8);
    assert_eq!(session.state(), SessionState::Active);
}

#[test]
fn order_status_decoding_allocates_nothing() {
    let mut session = active();
    let inbound: Vec<Vec<u8>> = (0..100u64)
        .map(|i| {
            let last = if i == 99 { "Y" } else { "N" };
            peer(
                "8",
                2 + i,
                &format!(
                    "11={i}|37={i}|17={i}|150=I|39=0|54=1|55=NKNUSDT|44=0.3513|14=0|151=1|\
                     6=0|584=5|911=100|912={last}|"
                ),
            )
        })
        .collect();
    let before = levibot_testkit::allocations();
    let mut flagged = 0;
    for message in &inbound {
        if let Some(SessionEvent::Report(report)) = session.handle(message, T0).event {
            flagged += usize::from(report.flags & report_flag::LAST_OF_MASS_STATUS != 0);
        }
    }
    assert_eq!(levibot_testkit::allocations() - before, 0);
    assert_eq!(flagged, 1);
}

#[test]
fn logout_handshake() {
    let mut session = active();
    session.logout(T0).unwrap();
    assert_eq!(session.state(), SessionState::LogoutSent);
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("5"));
    assert_eq!(
        feed(&mut session, &peer("5", 2, ""), T0),
        Some(SessionEvent::LoggedOut { by_peer: false })
    );
    assert_eq!(session.state(), SessionState::Closed);
    assert!(drain(&mut session).is_empty());

    // Started by the venue: answered.
    let mut session = active();
    assert_eq!(
        feed(&mut session, &peer("5", 2, "58=bye|"), T0),
        Some(SessionEvent::LoggedOut { by_peer: true })
    );
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("5"));

    // No answer: close after the deadline.
    let mut session = active();
    session.logout(T0).unwrap();
    assert_eq!(
        session.poll_timers(T0 + GRACE),
        Some(SessionEvent::Disconnected(DisconnectReason::LogoutTimeout))
    );
}

#[test]
fn sequence_numbers_carry_over_to_the_next_session() {
    let mut session = active();
    session.send_order(&limit_buy(1), T0).unwrap();
    feed(&mut session, &peer("0", 2, ""), T0);
    session.logout(T0).unwrap();
    feed(&mut session, &peer("5", 3, ""), T0);
    let saved = session.seq_nums();
    assert_eq!(
        saved,
        SessionSeqNums {
            next_sender: 4,
            next_target: 4
        }
    );
    // The same session, reconnected.
    session.on_disconnected();
    session.logon(T0 + SEC).unwrap();
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 34), Some("4"));
    assert_eq!(value(&out[0], 141), None);
    // A new session restored from the saved value.
    let mut restored = session_with(saved);
    restored.logon(T0 + SEC).unwrap();
    let out = drain(&mut restored);
    assert_eq!(value(&out[0], 34), Some("4"));
    let event = feed(&mut restored, &peer("A", 4, "98=0|108=30|"), T0 + SEC);
    assert!(matches!(event, Some(SessionEvent::LoggedOn { .. })));
    assert_eq!(restored.seq_nums().next_target, 5);
    assert!(drain(&mut restored).is_empty());
}

#[test]
fn random_bytes_never_panic() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let valid = [
        peer("0", 2, ""),
        peer("1", 3, "112=X|"),
        peer("2", 2, "7=1|16=0|"),
        peer("4", 2, "123=Y|36=9|"),
        peer("3", 2, "45=2|"),
        peer(
            "8",
            2,
            "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|14=1|151=0|31=0.1|32=1|",
        ),
        peer("9", 2, "11=7|41=6|37=1|39=0|434=1|"),
        peer("5", 2, ""),
        // Sequence numbers at the edge of u64.
        peer("4", 2, "123=N|36=18446744073709551615|"),
        peer("2", 2, "7=18446744073709551614|16=18446744073709551615|"),
        peer("0", 9_223_372_036_854_775_807, ""),
        peer("0", 18_446_744_073_709_551_615, ""),
    ];
    for round in 0..2_000 {
        let mut session = active();
        if rng.bool() {
            session.send_order(&limit_buy(round), T0).unwrap();
        }
        let mut input = Vec::new();
        for _ in 0..rng.usize(1..6) {
            let mut msg = valid[rng.usize(..valid.len())].clone();
            for _ in 0..rng.usize(0..4) {
                let at = rng.usize(..msg.len());
                msg[at] = match rng.u8(..4) {
                    0 => 0x01,
                    1 => b'=',
                    2 => rng.u8(b'0'..=b'9'),
                    _ => rng.u8(..),
                };
            }
            if rng.u8(..8) == 0 {
                let junk: Vec<u8> = (0..rng.usize(..64)).map(|_| rng.u8(..)).collect();
                input.extend_from_slice(&junk);
            }
            input.extend_from_slice(&msg);
        }
        let mut at = 0;
        let mut now = T0;
        while at < input.len() {
            let handled = session.handle(&input[at..], now);
            if handled.consumed == 0 {
                break;
            }
            at += handled.consumed;
            now += rng.u64(..10 * SEC);
            session.poll_timers(now);
            while session.take_event().is_some() {}
            drain(&mut session);
        }
    }
}

#[test]
fn hot_path_allocates_nothing() {
    const ROUNDS: u64 = 200;
    let mut session = active();
    let fill =
        "6=0.3513|11=7|14=1.5|17=1|31=0.3513|32=1.5|37=12|38=1.5|39=2|54=1|55=NKNUSDT|150=F|151=0|";
    // The venue's stream, built beforehand: a fill and a TestRequest per round.
    let inbound: Vec<(Vec<u8>, Vec<u8>)> = (0..ROUNDS)
        .map(|round| {
            (
                peer("8", 2 + 2 * round, fill),
                peer("1", 3 + 2 * round, "112=PING|"),
            )
        })
        .collect();
    let order = limit_buy(7);
    let before = levibot_testkit::allocations();
    let mut reports = 0;
    for (round, (fill, test_request)) in inbound.iter().enumerate() {
        let now = T0 + round as u64 * SEC;
        session.send_order(&order, now).unwrap();
        if let Some(SessionEvent::Report(_)) = session.handle(fill, now).event {
            reports += 1;
        }
        session.handle(test_request, now);
        session.poll_timers(now);
        let len = session.outbound().len();
        session.consume_outbound(len);
    }
    let allocations = levibot_testkit::allocations() - before;
    assert_eq!(reports, ROUNDS);
    assert_eq!(session.seq_nums().next_target, 2 + 2 * ROUNDS);
    assert_eq!(allocations, 0);
}

/// RFC 8032's first Ed25519 test key (secret seed).
const RFC8032_TEST_1_SECRET: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
/// Its public key (RFC 8032).
const RFC8032_TEST_1_PUBLIC: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];
/// `openssl pkeyutl -sign -rawin` with that key over `A|LEVI|SPOT|1|20240229-12:00:00.000`
/// (computed independently of this crate), base64.
const OPENSSL_SIGNATURE: &str =
    "TuimE2ibKdnEJ3/JJkLKYeAYjKD1U4XgqsqIhszK6sIuZTJ8k63xOpO8Ir9cwbOXcDFytKxmEM35vjoXNmVyAg==";

#[test]
fn binance_logon_is_signed_with_ed25519() {
    let binance = BinanceLogon::new(
        "APIKEY123",
        &RFC8032_TEST_1_SECRET,
        MessageHandling::Sequential,
    )
    .unwrap();
    assert_eq!(binance.public_key(), RFC8032_TEST_1_PUBLIC);
    assert!(!format!("{binance:?}").contains("APIKEY123"));
    let mut session = configured_session(
        SessionConfig {
            target_comp_id: "SPOT".into(),
            reset_seq_num: true,
            binance_logon: Some(binance),
            ..config()
        },
        SessionSeqNums::default(),
    );
    session.logon(T0).unwrap();
    // The raw bytes: RawDataLength right before RawData, as the reader requires.
    let text = String::from_utf8(session.outbound().to_vec()).unwrap();
    assert!(
        text.contains(&format!("\x0195=88\x0196={OPENSSL_SIGNATURE}\x01")),
        "{text:?}"
    );
    let out = drain(&mut session);
    let logon = &out[0];
    assert_eq!(value(logon, 35), Some("A"));
    assert_eq!(value(logon, 34), Some("1"));
    assert_eq!(value(logon, 52), Some("20240229-12:00:00.000"));
    assert_eq!(value(logon, 96), Some(OPENSSL_SIGNATURE));
    assert_eq!(value(logon, 98), Some("0"));
    assert_eq!(value(logon, 141), Some("Y"));
    assert_eq!(value(logon, 553), Some("APIKEY123"));
    assert_eq!(value(logon, 25035), Some("2"));

    assert_eq!(
        BinanceLogon::new("", &RFC8032_TEST_1_SECRET, MessageHandling::Unordered).unwrap_err(),
        BinanceLogonError::ApiKeyLength { len: 0 }
    );
    assert_eq!(
        BinanceLogon::new("a b", &RFC8032_TEST_1_SECRET, MessageHandling::Unordered).unwrap_err(),
        BinanceLogonError::ApiKeyByte {
            offset: 1,
            byte: b' '
        }
    );
}

/// The transport over loopback against a scripted peer: the venue's Logon arrives one byte at a
/// time, a report split in two, and a close ends the connection.
#[test]
fn connection_keeps_partial_messages_until_complete() {
    const TIMEOUT: Duration = Duration::from_secs(30);
    let (mut session, mut conn, mut peer_stream) = connected_to_venue();
    let mut events = Vec::new();
    let mut received = Vec::new();
    let poll =
        |conn: &mut FixConnection, session: &mut FixSession, events: &mut Vec<SessionEvent>| {
            conn.poll(session, T0, |e| events.push(e)).unwrap()
        };
    // Our Logon reaches the peer.
    let deadline = Instant::now() + TIMEOUT;
    while !received.ends_with(b"\x01") || parse_message(&received).is_err() {
        assert!(Instant::now() < deadline, "no Logon");
        poll(&mut conn, &mut session, &mut events);
        let mut buf = [0u8; 512];
        if let Ok(n) = peer_stream.read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(parse_message(&received).unwrap().msg_type(), b"A");
    // The venue's Logon, byte by byte.
    for &byte in &peer("A", 1, "98=0|108=30|") {
        peer_stream.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
        poll(&mut conn, &mut session, &mut events);
    }
    let deadline = Instant::now() + TIMEOUT;
    while events.is_empty() {
        assert!(Instant::now() < deadline, "no LoggedOn");
        poll(&mut conn, &mut session, &mut events);
    }
    assert!(matches!(events[0], SessionEvent::LoggedOn { .. }));
    // A report in two pieces with a heartbeat after it.
    let report = peer(
        "8",
        2,
        "11=7|37=1|17=1|150=F|39=2|54=1|55=NKNUSDT|31=0.3513|32=1.5|14=1.5|151=0|",
    );
    let (first, second) = report.split_at(report.len() / 2);
    peer_stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    poll(&mut conn, &mut session, &mut events);
    assert_eq!(events.len(), 1);
    peer_stream
        .write_all(&[second, &peer("0", 3, "")].concat())
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while session.seq_nums().next_target < 4 {
        assert!(Instant::now() < deadline, "no report");
        poll(&mut conn, &mut session, &mut events);
    }
    assert!(matches!(events[1], SessionEvent::Report(r) if r.client_order_id == 7));
    // The venue goes away.
    drop(peer_stream);
    let deadline = Instant::now() + TIMEOUT;
    while poll(&mut conn, &mut session, &mut events) != ConnectionStatus::Closed {
        assert!(Instant::now() < deadline, "no close");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(session.state(), SessionState::Disconnected);
    assert_eq!(session.seq_nums().next_target, 4);
}

#[test]
fn an_order_just_queued_can_be_taken_back_before_it_leaves() {
    let mut session = active();
    let first = session.send_order(&limit_buy(7), T0).unwrap();
    let before = session.outbound().len();
    let second = session.send_order(&limit_buy(8), T0).unwrap();
    let len = session.outbound().len() - before;
    // Only the last one, whole, and with its own number.
    assert!(!session.retract_order(first, before));
    assert!(!session.retract_order(second, len + 1));
    assert!(session.retract_order(second, len));
    assert_eq!(session.outbound().len(), before);
    assert_eq!(session.seq_nums().next_sender, second);
    // Its number is used again by the next order; the first order is untouched.
    assert_eq!(session.send_order(&limit_buy(9), T0).unwrap(), second);
    let out = drain(&mut session);
    let ids: Vec<_> = out
        .iter()
        .map(|m| value(m, 11).unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["7", "9"]);
    // Once bytes were consumed (written out), nothing can be taken back.
    let third = session.send_order(&limit_buy(10), T0).unwrap();
    let len = session.outbound().len();
    session.consume_outbound(1);
    assert!(!session.retract_order(third, len));
}

#[test]
fn a_session_with_nothing_to_continue_asks_for_a_reset_once() {
    // A daemon that found no journal (a reboot) has no sequence numbers: the venue, which kept
    // the old session, would refuse 34=1 as too low unless the Logon asks for a reset.
    let mut session = session_with(SessionSeqNums {
        next_sender: 40,
        next_target: 30,
    });
    session.reset_sequence_on_next_logon();
    session.logon(T0).unwrap();
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 35), Some("A"));
    assert_eq!(value(&out[0], 34), Some("1"));
    assert_eq!(value(&out[0], 141), Some("Y"));
    // A logon that never completed asks again.
    session.on_disconnected();
    session.logon(T0 + SEC).unwrap();
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 141), Some("Y"));
    assert_eq!(value(&out[0], 34), Some("1"));
    let event = feed(&mut session, &peer("A", 1, "98=0|108=30|141=Y|"), T0 + SEC);
    assert!(
        matches!(event, Some(SessionEvent::LoggedOn { .. })),
        "{event:?}"
    );
    // Once logged on, a reconnect continues the new sequence.
    session.on_disconnected();
    session.logon(T0 + 2 * SEC).unwrap();
    let out = drain(&mut session);
    assert_eq!(value(&out[0], 141), None);
    assert_eq!(value(&out[0], 34), Some("2"));
}
